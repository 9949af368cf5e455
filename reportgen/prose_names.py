"""Every name a study's prose may use, with what it gives: the "Write your own study" page is generated from this
table, and :mod:`reportgen.prose` offers exactly these names."""
from __future__ import annotations

from .i18n import N_

# Every name prose may use, with what it gives: the "Write your own study" page is generated from this table (each
# edition translates the description; the usage is code).
NAMES: dict[str, tuple[str, str]] = {
    "analysis": ('analysis("curves")', N_("places the section of a declared analysis here")),
    "results": ("results()", N_("places the results table (test accuracy, intervals, verdicts) here")),
    "models": ("models()", N_("places the description of each variant's model (layers and parameters) here; "
                              "models(heading=False) leaves out its heading")),
    "gap": ("gap()", N_("places the train − validation gap table at the checkpoint, with its verdicts, here")),
    "shows": ("shows()", N_("places the closing section, \"What this shows — and what it doesn't\" (the verdicts, "
                            "convergence, confounds and limits), here; shows(heading=False) leaves out its heading so "
                            "the prose can write its own; no block may follow it (without it, the section ends the "
                            "post)")),
    "answer": ("{% call answer() %}…{% endcall %}", N_(
        "the post's answer to its question, in the prose's own words with measured numbers (acc, diff); shown first "
        "in the closing section, under the question")),
    "takeaway": ('{% call takeaway(figure="curves") %}…{% endcall %}', N_(
        "the post in three lines, shown at its top and on the home page; figure names the declared analysis whose "
        "first figure the home page shows")),
    "from_study": ('from_study("pooling")', N_(
        "another study's results, for a post that reads them (the study is listed under reads: in the YAML): .title "
        ".link .acc(v) .diff(v) .variant(v) .result(analysis) .still_learning (labels of its variants still "
        "learning)")),
    "acc": ('acc("variant")', N_("a variant's mean test accuracy with its interval, e.g. 83.8% (95% CI 83.4 to "
                                 "84.2); also .mean .low .high .std .n")),
    "diff": ('diff("variant")', N_("the difference in test accuracy to the baseline (paired over seeds where both "
                                   "variants use the same images), e.g. −0.4 points (95% CI −1.1 to +0.2); also .mean "
                                   ".low .high .verdict")),
    "result": ('result("filters")', N_(
        "a declared analysis' computed result, so that the wording can follow what it measured: the fields of the "
        "analysis' result class, e.g. result(\"activation_stats\").layer(\"dropout\", \"relu4\").dead or "
        "result(\"filters\").reading(\"tiny\").sum; before training (the check) every field is empty and every "
        "comparison false")),
    "gap_diff": ('gap_diff("variant")', N_(
        "the difference in the train − validation gap to the baseline (negative: narrower), e.g. −0.9 points (95% CI "
        "−1.3 to −0.5); also .mean .low .high .verdict and .train_change .val_change, the change of each side of the "
        "gap")),
    "variant": ('variant("name")', N_(
        "a variant's .label .description .parameters .macs (multiply-adds of one image's forward pass) .dataset "
        ".epochs .max_shift .still_learning (its networks had not stopped improving) .train_acc_running "
        ".train_acc_eval (training accuracy at the checkpoint, counted during training or measured in eval mode; %)")),
    "setup": ("setup", N_("the setup: .epochs .seeds .train_limit .eval_limit .val_size .train_total .variants")),
    "profile": ("profile", N_("the profile's name: smoke, quick or full")),
    "study": ("study", N_("the study's .id .title .question")),
    "post": ('post("tiny")', N_("a link to another study's post (plain text when that study is not in the site)")),
}
# What shows() places while the prose renders: the post replaces it with the closing section (see Blocks.shows).

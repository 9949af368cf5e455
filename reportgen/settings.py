"""Every constant that more than one module needs, defined once, with its unit and the reason for its value.

Nothing here imports torch, matplotlib or any other part of reportgen, so every module can read it cheaply.
"""
from __future__ import annotations

# ---- images and datasets -------------------------------------------------------------------------------------
IMAGE_SIZE = 28              # pixels per side of every MNIST-family image
NUM_CLASSES = 10             # MNIST, Fashion-MNIST and KMNIST each have ten balanced classes
DATASET_TRAIN_SIZE = 60_000  # training images of each dataset (and 10,000 test images)
VAL_SIZE = 5_000             # training images held out to choose the best epoch (split seed 0)
SPLIT_SEED = 0
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}
# A dataset that only optional variants need and that could not be provisioned is not tried again by `reportgen run`
# for this long (its variants stay left out; `reportgen data fetch <name>` tries at once). Trying costs seconds
# (torchvision's import and a failed download) on every warm run of a machine without internet.
OPTIONAL_DATASET_RETRY_S = 3600

# ---- languages -----------------------------------------------------------------------------------------------
# Each edition of the site: its short code (URL prefix, study file suffix: experiments/<id>.pt.md) and its CLDR
# locale (Babel number and date formats, Material's theme.language). English is the source and sits at the root.
SOURCE_LANGUAGE = "en"
LANGUAGES = {"en": "en_GB", "pt": "pt_BR"}  # CLDR locales: British English, as the text is written

# ---- evaluation and analyses ---------------------------------------------------------------------------------
EVAL_BATCH = 1000            # batch of reportgen.train.evaluate; the shift grid's unshifted pass repeats it exactly
SHIFT_RADIUS = 6             # the shift grid covers dx, dy in -6..6 pixels (169 shifts)
CONFIDENCE = 0.95            # every interval in a post is a 95% interval
FIRST_SEED = "the first seed's run"  # what per-model analyses (filters, feature maps, shift grid) are based on
ANALYSIS_CACHE_VERSION = 1   # bump when a cached analysis computation changes meaning

# ---- environment variables -----------------------------------------------------------------------------------
ENV_DATA = "REPORTGEN_DATA"                    # data root (default: data/)
ENV_RESULTS = "REPORTGEN_RESULTS"              # results store (default: results/)
ENV_CACHE = "REPORTGEN_CACHE"                  # analysis and figure cache (default: .cache/)
ENV_SHIFT_IMAGES = "REPORTGEN_SHIFT_IMAGES"    # shift grid on the first N test images
ENV_SKIP_CHECKSUM = "REPORTGEN_SKIP_CHECKSUM"  # accept IDX files with unknown checksums
ENV_OFFLINE = "REPORTGEN_OFFLINE"              # no downloads, no package installs (tests)
ENV_DEBUG = "REPORTGEN_DEBUG"                  # show tracebacks of internal errors
ENV_TEST_WRITE_DELAY = "REPORTGEN_TEST_WRITE_DELAY"  # fault-injection tests: pause (seconds) at each write step

# ---- convergence: did a variant's networks stop improving, or were they still learning? ----------------------
# Measured from each run's per-epoch validation accuracy (history.json), so runs trained before this existed get
# the same diagnosis. The gain is val_acc(last epoch) - val_acc(CONVERGENCE_WINDOW epochs earlier), in points;
# a run with fewer epochs uses all of them after the first (a shorter window with the same threshold is the
# stricter test, so a short run is never called converged more easily).
CONVERGENCE_WINDOW = 3       # epochs over which the validation-accuracy gain is measured
# A variant is "still learning" when its mean gain over seeds exceeds CONVERGED_GAIN_POINTS, or exceeds half of it
# while the best validation epoch is the last one on most seeds (more than half). Why 0.3 points over 3 epochs:
# a network still gaining 0.1 points per epoch would gain about a point in ten more epochs, the size of the
# differences the posts weigh; below that, the drift is within the seed-to-seed spread of a final accuracy
# (a few tenths of a point), so more epochs would not change a comparison.
CONVERGED_GAIN_POINTS = 0.3  # percentage points of validation accuracy over CONVERGENCE_WINDOW epochs

# ---- confounds: does a variant differ from the baseline in more than the study's declared factor? ------------
# A variant whose parameter count differs from the baseline's by more than this fraction is a bigger or smaller
# network, not only the declared change (reportgen.confounds). 10%: a change that keeps the model's size (batch
# norm, +0.04%; a fully connected net sized to match, +0.5%) stays well inside it, while a network of a different
# size on purpose (global average pooling, −75%; a linear classifier, 5×) is far outside.
PARAMETER_TOLERANCE = 0.10   # relative difference from the baseline's trainable parameters

# ---- what a verdict about the train − validation gap and the checkpoint rests on ------------------------------
# The gap's training accuracy is measured on the stored checkpoint in eval mode (dropout off, no augmentation) on
# the first TRAIN_EVAL_IMAGES of the training images the run trained on (all of them when it trained on fewer).
# Why 10,000: the binomial standard error of an accuracy near 90% is then 0.3 points, well below the gaps the
# posts weigh, and LeNet scores them in about a second on one CPU core (cached after the first time).
TRAIN_EVAL_IMAGES = 10_000
# A filter "sums to nearly zero" when its sum is under this share of its total absolute weight: then a flat area
# moves its output by less than a tenth of what the strongest pattern of the same brightness range can.
NEAR_ZERO_SUM = 0.1
# A first-layer filter "fires on the empty background" when its output there (bias included) is above this, in the
# normalised units of its input, where a Fashion-MNIST image spans about 2.8: an output of 0.03 is no response.
FIRES_ON_BLACK = 0.1
# Below this coherence the weights change in no single direction (a spot, a blob or a mixture): no orientation.
ORIENTED = 0.5
# Shift distances (pixels) the closing section reports: one pixel (with the diagonal ±1, ±1) is less than a 2×2
# pooling window, two is a whole window, four is two windows of the first pooling layer (one of the second).
DISTANCES = (1, 2, 4)

# Validation loss and validation accuracy "disagree" about a run's checkpoint (the epoch of the highest validation
# accuracy) when both hold: the lowest validation loss came more than VAL_LOSS_EPOCH_TOLERANCE epochs away from the
# checkpoint, and the loss at the checkpoint is more than VAL_LOSS_RISE_FRACTION above that lowest loss. Either
# alone misleads: on a flat plateau the lowest loss falls on any epoch by chance, and in the first epochs the loss
# moves by more than 10% from one epoch to the next while both measures still agree the network is improving.
VAL_LOSS_EPOCH_TOLERANCE = 3      # epochs
VAL_LOSS_RISE_FRACTION = 0.10     # relative rise of the validation loss at the checkpoint above its lowest value

# ---- the training engine (part of every run's cache key: changing it retrains, never mixes results) ----------
# One intra-op thread per CPU run: a run's numbers then do not depend on how many cores the machine has (float
# reductions split across threads round differently), and several runs train side by side, one per core, which on
# a 2-core CPU gave 1.14x the throughput of one two-thread run. channels_last: 8-17% faster per LeNet step on CPU.
CPU_THREADS_PER_RUN = 1
CHANNELS_LAST_ON_CPU = True
TRAINING_ENGINE = {"cpu_threads": CPU_THREADS_PER_RUN, "cpu_channels_last": CHANNELS_LAST_ON_CPU, "version": 2}

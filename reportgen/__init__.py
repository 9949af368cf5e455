"""reportgen: run declared CNN experiments and publish them as a tutorial blog."""
__version__ = "0.1.0"

"""Data the notebooks use, all offline: images (digits/MNIST), a synthetic parallel corpus, the toy language of §2.2."""

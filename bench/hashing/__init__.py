"""Near-duplicate detection: the paper's autoencoder semantic hash (section 4.1.1), searched with faiss.

1. A 3072-128-3072 ReLU autoencoder is trained on 32x32 centre crops: denoising (Gaussian noise on
   the input) and dropout on the code, reconstructing the clean image. The paper gives neither the
   noise, the dropout rate nor the schedule: they are ``autoencoder.AERecipe``'s fields; the inputs'
   optional shifts and brightness jitter are ``augment``'s.
2. The hash of an image is which of the 128 code units are active (ReLU > 0, the paper's; or above
   each unit's median over the training images, ``threshold="median"``), packed into 16 bytes.
   Images are read, hashed and dropped in chunks (``collection``): only the codes stay in memory.
3. Duplicates are pairs of codes within Hamming distance r (``search``). Identical codes are grouped
   first (the paper's linear-time collision search, all of r = 0); for r > 0 only the distinct codes
   are searched: by an exact substring join (``substring_join``, radii 1-11) or a faiss binary range
   search (exact ``IndexBinaryFlat``, or the approximate ``IndexBinaryIVF``).
4. Clusters are connected components (each row joined to its group, near groups joined): a group of k
   identical codes never becomes k(k-1)/2 pairs. The lowest index of a cluster is kept, the rest
   flagged for removal (``clusters.star``: only those within r of the kept image); row pairs are
   listed only for the rows that need them (scoring).

Images are uint8 ``C x 32 x 32`` tensors as every registered data set serves them; an image whose file
cannot be decoded is recorded in a ``skipped`` list (name, reason) and left out, never a crash.
``hamming`` holds the packed codes' distance and the ``Pairs`` record that ``search`` and ``clusters`` share.
"""

"""Model families, one module each, registered in ``FAMILIES`` (see ``dcgan.models.family``):
``dcgan`` (the paper's unconditional DCGAN, the default), ``cdcgan`` (the conditional DCGAN) and
``srgan`` (super-resolution, Ledig et al. 2017) and ``stargan`` (multi-domain image-to-image translation,
Choi et al. 2018)."""
from dcgan.models import cdcgan, dcgan, srgan, stargan  # noqa: F401  (registers the families)
from dcgan.models.family import (FAMILIES, Family, build_net, check_classes, config_from_dict, family_of,
                                 register_family)

__all__ = ["FAMILIES", "Family", "build_net", "check_classes", "config_from_dict", "family_of", "register_family"]

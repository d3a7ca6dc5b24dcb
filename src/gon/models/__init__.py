"""The models layer: every trainable model, built on :mod:`gon.nets` and :mod:`gon.origin`.

gon.models.core             GradientOriginModel (the shared API) and the paper's GON, VariationalGON, ImplicitGON
gon.models.baselines        AutoEncoder, TiedAutoEncoder, GLO, VAE on the same decoders (Tables 1-2)
gon.models.generalisations  ClassifierGON and modality conversion (Sec. 3.5 "GON generalisations")

Models know nothing of names, files or runs: :mod:`gon.pretrained` saves and rebuilds a known
class, :mod:`gon.registry` maps ``--model`` names to classes.
"""

from gon.models.baselines import GLO, VAE, AutoEncoder, MLPAutoEncoder, TiedAutoEncoder
from gon.models.core import GON, GradientOriginModel, ImplicitGON, VariationalGON, as_pixels, per_image_sse
from gon.models.generalisations import SOURCES, ClassifierGON, ConversionAE, ConversionGON, degrade

__all__ = [
    "GLO",
    "GON",
    "SOURCES",
    "VAE",
    "AutoEncoder",
    "ClassifierGON",
    "ConversionAE",
    "ConversionGON",
    "GradientOriginModel",
    "ImplicitGON",
    "MLPAutoEncoder",
    "TiedAutoEncoder",
    "VariationalGON",
    "as_pixels",
    "degrade",
    "per_image_sse",
]

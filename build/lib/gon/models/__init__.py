"""The models layer: every trainable model, built on :mod:`gon.nets` and :mod:`gon.origin`.

gon.models.core             GradientOriginModel (the shared API), ConvModel (the conv models' base) and GON
gon.models.variational      VariationalGON (Sec. 3.3)
gon.models.implicit         ImplicitGON (Sec. 3.4): a SIREN over coordinates of any dimension
gon.models.baselines        AutoEncoder, TiedAutoEncoder, GLO, VAE on the same decoders (Tables 1-2)
gon.models.generalisations  ClassifierGON and modality conversion (Sec. 3.5 "GON generalisations")

Models know nothing of names, files or runs: :mod:`gon.models.pretrained` saves and rebuilds a known
class, :mod:`gon.models.registry` maps ``--model`` names to classes.
"""

from gon.models.baselines import GLO, VAE, AutoEncoder, MLPAutoEncoder, TiedAutoEncoder
from gon.models.core import GON, ConvModel, GradientOriginModel, per_image_sse
from gon.models.generalisations import SOURCES, ClassifierGON, ConversionAE, ConversionGON, degrade
from gon.models.implicit import ImplicitGON, as_pixels
from gon.models.variational import VariationalGON

__all__ = [
    "GLO",
    "GON",
    "SOURCES",
    "VAE",
    "AutoEncoder",
    "ClassifierGON",
    "ConvModel",
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

"""Neural networks of the core (ROS-free): encoders, the denoisers (ConditionalUnet1D,
MlpDenoiser), factory."""

from sdm_policy_core.models.factory import (
    build_denoiser,
    build_observation_encoder,
    count_parameters,
)
from sdm_policy_core.models.keys import ACTION, AGENT_POS, IMAGE, OBSERVATION_KEYS, POINT_CLOUD
from sdm_policy_core.models.mlp_denoiser import FiLMResidualBlock, MlpDenoiser
from sdm_policy_core.models.obs_encoder import ObservationEncoder, observation_feature_dim
from sdm_policy_core.models.pointnet import PointCloudEncoder, StateEncoder
from sdm_policy_core.models.resnet import RandomCrop, ResNet18Encoder, ResNet18GN
from sdm_policy_core.models.unet1d import (
    ConditionalResidualBlock1D,
    ConditionalUnet1D,
    Conv1dBlock,
    SinusoidalPosEmb,
)

__all__ = [
    "ACTION",
    "AGENT_POS",
    "IMAGE",
    "OBSERVATION_KEYS",
    "POINT_CLOUD",
    "ConditionalResidualBlock1D",
    "ConditionalUnet1D",
    "Conv1dBlock",
    "FiLMResidualBlock",
    "MlpDenoiser",
    "ObservationEncoder",
    "PointCloudEncoder",
    "RandomCrop",
    "ResNet18Encoder",
    "ResNet18GN",
    "SinusoidalPosEmb",
    "StateEncoder",
    "build_denoiser",
    "build_observation_encoder",
    "count_parameters",
    "observation_feature_dim",
]

"""Model architectures: `spec` holds the data model and the derived figures (parameters,
weight and KV bytes, FLOPs), `hf_config` reads a Hugging Face `config.json` or a bundled
model key into it. Import either from here."""

from hetplan.model.hf_config import (CONFIG_BOUNDS, check_config_numbers, load_model,
                                     model_index, resolve_model_path, spec_from_hf_config)
from hetplan.model.spec import MLASpec, ModelSpec, MoESpec

__all__ = ["CONFIG_BOUNDS", "MLASpec", "ModelSpec", "MoESpec", "check_config_numbers",
           "load_model", "model_index", "resolve_model_path", "spec_from_hf_config"]

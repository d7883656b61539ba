"""Training loops of the teacher (`sdm train`) and of SDM distillation (`sdm distill`)."""

"""Release steps (sign, verify, …): each takes one image and returns a StepResult."""

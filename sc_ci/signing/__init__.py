"""Who signs and who is trusted: key references and keyless identities (signers.py), the configured keys
(keys.py), the expected certificate identity (identity.py), the run's one SigningPlan (plan.py) and how it is
decided from the configuration (setup.py). Tools and steps import these; nothing here runs a step."""

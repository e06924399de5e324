"""The release engine: a frozen Plan (images × enabled steps, policy), an executor running one pipeline per
image, results, and the verdict the policy gives them."""

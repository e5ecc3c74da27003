"""Rules: the registry of rule ids (severity, title, fix hint) and their explanations.

The ground floor beside `findings`: it imports `findings` only, and every layer above
may import it.
"""

from tflite_gate.rules.docs import DOCS_PATH, DOCS_URL, explain, rule_url, rules_document
from tflite_gate.rules.explanations import EXPLANATIONS, Explanation
from tflite_gate.rules.registry import RULES, Rule, make_finding

__all__ = [
    "DOCS_PATH",
    "DOCS_URL",
    "EXPLANATIONS",
    "RULES",
    "Explanation",
    "Rule",
    "explain",
    "make_finding",
    "rule_url",
    "rules_document",
]

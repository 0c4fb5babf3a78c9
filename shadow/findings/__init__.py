"""Findings: the differences of many exchanges folded into causes an operator can act on.

    group      one exchange's differences -> its Causes (first-order differences, with the
               differences that follow from each inside it)
    cascade    links a finding to an earlier one that explains it, with direct evidence
    triage     the states of a finding, who may change them, what the gate does with them
    window     the gate's view: which findings explained each mismatching exchange
    recorder   the verifier listener that feeds the store, cascades, versions and the window
    storage    the tables findings live in inside the state store

Everything but `recorder` and `storage` is pure and tested without I/O.
"""

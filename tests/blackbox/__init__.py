"""Black-box HTTP contract suite of the account service; see conftest.py for how it finds one."""

"""The rules, one family per module; each imports only the rule API (`purelint._rule`), and
`purelint._registry` lists every rule class."""

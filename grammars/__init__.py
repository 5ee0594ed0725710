"""The Lark grammar of the .arch language, shipped inside the package as resdsl.grammars."""

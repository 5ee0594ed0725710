"""Front end: .arch text → parse tree → AST → one resolved `NetworkSpec`."""

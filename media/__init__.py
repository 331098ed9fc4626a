"""Pure media work: bytes in, result out. Imports only the contracts (schemas)."""

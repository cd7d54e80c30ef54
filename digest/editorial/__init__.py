"""Editorial decisions stored with an edition (the editor's note)."""

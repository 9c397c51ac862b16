"""Floor 6, figures and HTML reports: the only subpackage that imports matplotlib."""

"""Floor 7, figures and HTML reports: the only subpackage that imports matplotlib."""

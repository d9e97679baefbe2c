"""Projects made in the app (blank or copied from another), their settings, labels and members:
what admins did in Django admin before. Every change is recorded as a ProjectChange."""

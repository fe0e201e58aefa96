"""A user's data on request: everything stored about one end user (the OpenAI ``user``
field a client sends) exported as one document, or erased in one transaction with the
usage and cost figures kept (docs/observe.md, "A user's data on request")."""

from modelyard.observe.userdata.erase import erase_user
from modelyard.observe.userdata.errors import InvalidUser, UserNotFound
from modelyard.observe.userdata.export import export_user, record_export, summarise_user
from modelyard.observe.userdata.pseudonym import pseudonym

__all__ = [
    "InvalidUser",
    "UserNotFound",
    "erase_user",
    "export_user",
    "pseudonym",
    "record_export",
    "summarise_user",
]

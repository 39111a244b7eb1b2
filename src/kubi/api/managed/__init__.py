"""Field ownership: managedFields and server-side apply, as upstream v1.33 does them.

Every write records which manager set which fields (`update_managed_fields`),
and an apply merges a configuration while honouring that ownership
(`server_side_apply`). Field sets travel in the fieldsV1 encoding and are
handled as such (`FieldSet`); the schema decides which values are owned whole
and which key by key or item by item. Modules: `fieldset` (the set algebra),
`walk` (field sets of objects), `merge`, `skeleton` (what a create starts
from), `entries` (the managedFields list), `manager` (updates), `apply`,
`options` (manager names and their checks).
"""

from kubi.api.managed.apply import LAST_APPLIED, conflict_error, server_side_apply
from kubi.api.managed.entries import ANCIENT_CHANGES, MAX_UPDATE_MANAGERS
from kubi.api.managed.fieldset import FieldsError, FieldSet, path_string
from kubi.api.managed.manager import reset_filter, update_managed_fields
from kubi.api.managed.options import (
    FIELD_MANAGER_MAX_LENGTH,
    default_manager,
    field_manager_errors,
    manager_or_user_agent,
    validate_field_manager,
    validate_managed_fields,
)
from kubi.api.managed.skeleton import empty_object

__all__ = [
    "ANCIENT_CHANGES",
    "FIELD_MANAGER_MAX_LENGTH",
    "LAST_APPLIED",
    "MAX_UPDATE_MANAGERS",
    "FieldSet",
    "FieldsError",
    "conflict_error",
    "default_manager",
    "empty_object",
    "field_manager_errors",
    "manager_or_user_agent",
    "path_string",
    "reset_filter",
    "server_side_apply",
    "update_managed_fields",
    "validate_field_manager",
    "validate_managed_fields",
]

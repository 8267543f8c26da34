"""eventual.cdk: the ``Service`` construct that deploys an Eventual service to AWS.

```python
from eventual.cdk import Service, CommandProps, TaskProps

service = Service(stack, "invoice-service", entry="invoicing.service",
                  commands={"sendInvoice": CommandProps(environment={"TABLE": table.table_name})},
                  tasks={"chargeCreditCard": TaskProps(memory_size=512)})
```
"""

from .bundling import (
    Bundle,
    BundleOptions,
    BundlingError,
    BundlingWarning,
    build_bundle,
    lambda_platform,
)
from .props import CommandProps, FunctionProps, SubscriptionProps, TaskProps
from .service import Service, UnknownNameError
from .spec import ServiceSpecError, load_spec

__all__ = [
    "Bundle",
    "BundleOptions",
    "BundlingError",
    "BundlingWarning",
    "CommandProps",
    "FunctionProps",
    "Service",
    "ServiceSpecError",
    "SubscriptionProps",
    "TaskProps",
    "UnknownNameError",
    "build_bundle",
    "lambda_platform",
    "load_spec",
]

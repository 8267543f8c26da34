"""eventual.pulumi: the ``Service`` component that deploys an Eventual service to AWS.

```python
from eventual.pulumi import Service, CommandProps, TaskProps

service = Service("invoice-service", entry="invoicing.service",
                  commands={"sendInvoice": CommandProps(environment={"TABLE": "invoices"})},
                  tasks={"chargeCreditCard": TaskProps(memory_size=512)})
pulumi.export("api_url", service.api_url)
```

The configuration model, its checks, the bundler and the IAM statements are those of
``eventual.cdk`` (both import them from :mod:`eventual.aws_runtime.infra`).
"""

from eventual.aws_runtime.infra.bundling import (
    Bundle,
    BundleOptions,
    BundlingError,
    BundlingWarning,
)
from eventual.aws_runtime.infra.config import UnknownNameError
from eventual.aws_runtime.infra.props import (
    CommandProps,
    FunctionProps,
    SubscriptionProps,
    TaskProps,
)
from eventual.aws_runtime.infra.spec import ServiceSpecError, load_spec

from .service import Service

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
    "load_spec",
]

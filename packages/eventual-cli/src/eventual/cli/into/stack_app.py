"""A TypeScript CDK app, an SST app or a repository with neither: the Service construct is
Python, so the new package gets its own small Python CDK app (``infra/``) that deploys the
Eventual stack beside the rest, and the next steps say how the other stacks find it."""

from __future__ import annotations

from .repo import SST, TYPESCRIPT_CDK, IntoPlan, construct_id


def package_files(plan: IntoPlan) -> dict[str, str]:
    """A Python CDK app deploying only the Eventual stack (for repos whose CDK app is not
    Python)."""
    stack = f"{construct_id(plan.name)}"
    return {
        "infra/app.py": f'''"""The Eventual stack of {plan.name}, deployed beside your other stacks.

`npx aws-cdk@2 synth` (or `deploy`) in this folder, or from the repository:
`uv run --directory {plan.package} eventual deploy --app-dir infra`."""

import aws_cdk as cdk

from eventual.cdk import Service

app = cdk.App()
stack = cdk.Stack(app, "{stack}")
Service(stack, "{stack}", entry="{plan.entry}", name="{plan.name}")
app.synth()
''',
        "infra/cdk.json": '{\n  "app": "uv run --project .. python app.py"\n}\n',
    }


def next_steps(plan: IntoPlan) -> list[str]:
    """What to run after: deploy the Eventual stack, then how the other stacks find it."""
    steps = [
        f"uv run --directory {plan.package} eventual deploy --app-dir infra    # deploys the "
        f"Eventual stack {construct_id(plan.name)} beside your other stacks"
    ]
    record = f"/eventual/services/{plan.name}"
    if plan.kind == SST:
        steps.append(
            f"in sst.config.ts, read the SSM parameter {record} (JSON: apiUrl, eventBusArn...) "
            "to call the service: see 'eventual init --into' in the eventual-cli README"
        )
        from .python_pulumi import sst_lines  # or deploy it with Pulumi, as SST does

        steps.append("or, to deploy it with Pulumi (what SST v3 runs on):")
        steps.extend(sst_lines(plan))
    elif plan.kind == TYPESCRIPT_CDK:
        steps.append(
            f"in your TypeScript stacks, read the SSM parameter {record} (JSON: apiUrl, "
            "eventBusArn...): see 'eventual init --into' in the eventual-cli README"
        )
    return steps

"""The private path router -> server, read from the translated template (issue 14): the bearer
key never crosses the internet in plain text, by construction, and the router's subnets reach
every AWS service it calls. The deployment rehearsal (tests/scripts/test_rehearsal.py) checks the
same wiring on the stack moto builds from this template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.sam import Template, as_list, policy_statements, resources_of, source, translated


@pytest.fixture(scope="module")
def cfn() -> Template:
    return translated()


def props(cfn: Template, logical_id: str) -> dict[str, Any]:
    return dict(cfn["Resources"][logical_id]["Properties"])


def ref(value: Any) -> str:
    assert isinstance(value, dict) and set(value) == {"Ref"}, value
    return str(value["Ref"])


def route_table_of(cfn: Template, subnet: str) -> str:
    (table,) = (
        ref(a["Properties"]["RouteTableId"])
        for a in resources_of(cfn, "AWS::EC2::SubnetRouteTableAssociation").values()
        if ref(a["Properties"]["SubnetId"]) == subnet
    )
    return table


def routes_of(cfn: Template, table: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in resources_of(cfn, "AWS::EC2::Route").values()
        if ref(r["Properties"]["RouteTableId"]) == table
    ]


def internet_gateways(cfn: Template) -> set[str]:
    return set(resources_of(cfn, "AWS::EC2::InternetGateway"))


def is_public(cfn: Template, subnet: str) -> bool:
    """A subnet is public when its route table sends anything to an internet gateway."""
    return any(
        "GatewayId" in r and ref(r["GatewayId"]) in internet_gateways(cfn)
        for r in routes_of(cfn, route_table_of(cfn, subnet))
    )


def gateway_endpoint_services(cfn: Template, table: str) -> set[str]:
    services = set()
    for endpoint in resources_of(cfn, "AWS::EC2::VPCEndpoint").values():
        p = endpoint["Properties"]
        if p.get("VpcEndpointType") == "Gateway" and table in {ref(t) for t in p["RouteTableIds"]}:
            services.add(p["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1])
    return services


def nat_route_to_the_internet(cfn: Template, table: str) -> bool:
    for route in routes_of(cfn, table):
        if route.get("DestinationCidrBlock") == "0.0.0.0/0" and "NatGatewayId" in route:
            nat = props(cfn, ref(route["NatGatewayId"]))
            return is_public(cfn, ref(nat["SubnetId"]))
    return False


def router_subnets(cfn: Template) -> list[str]:
    vpc = props(cfn, "RouterFunction")["VpcConfig"]
    return [ref(s) for s in vpc["SubnetIds"]]


# ------------------------------------------------------------------ the key stays in the VPC


def test_server_url_is_the_private_address_of_the_stacks_interface(cfn: Template) -> None:
    env = props(cfn, "RouterFunction")["Environment"]["Variables"]
    assert env["SERVER_URL"] == {
        "Fn::Sub": "http://${ServerNetworkInterface.PrimaryPrivateIpAddress}:8000"
    }
    assert "SERVER_INSTANCE_TAG" not in env  # no look-up that could find a public address
    # Nothing the operator passes can point the router elsewhere.
    assert not {"ServerUrl", "ServerInstanceTag"} & set(cfn["Parameters"])
    assert cfn["Outputs"]["ServerUrl"]["Value"] == env["SERVER_URL"]


def test_the_servers_interface_is_private_and_never_gets_a_public_address(cfn: Template) -> None:
    eni = props(cfn, "ServerNetworkInterface")
    subnet = ref(eni["SubnetId"])
    assert not is_public(cfn, subnet)
    assert props(cfn, subnet)["MapPublicIpOnLaunch"] is False
    assert [ref(g) for g in eni["GroupSet"]] == ["ServerSecurityGroup"]
    # The only Elastic IP is the NAT gateway's; nothing associates one with the interface.
    assert not resources_of(cfn, "AWS::EC2::EIPAssociation")
    (eip,) = resources_of(cfn, "AWS::EC2::EIP")
    (nat,) = resources_of(cfn, "AWS::EC2::NatGateway").values()
    assert nat["Properties"]["AllocationId"] == {"Fn::GetAtt": [eip, "AllocationId"]}


def test_the_router_runs_in_the_private_subnets_of_the_same_vpc(cfn: Template) -> None:
    subnets = router_subnets(cfn)
    assert len(subnets) == 2
    azs = {json.dumps(props(cfn, s)["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2  # two availability zones
    for subnet in subnets:
        assert not is_public(cfn, subnet)
        assert props(cfn, subnet)["VpcId"] == {"Ref": "Vpc"}
    assert ref(props(cfn, "ServerNetworkInterface")["SubnetId"]) in subnets
    vpc = props(cfn, "RouterFunction")["VpcConfig"]
    assert vpc["SecurityGroupIds"] == [{"Ref": "RouterSecurityGroup"}]


def test_the_server_port_admits_the_router_group_and_nothing_wider(cfn: Template) -> None:
    server = props(cfn, "ServerSecurityGroup")
    assert "SecurityGroupIngress" not in server
    rules = [
        r["Properties"]
        for r in resources_of(cfn, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": "ServerSecurityGroup"}
    ]
    assert rules == [
        {
            "Description": "Transcription API from the router Lambda",
            "GroupId": {"Ref": "ServerSecurityGroup"},
            "IpProtocol": "tcp",
            "FromPort": 8000,
            "ToPort": 8000,
            "SourceSecurityGroupId": {"Ref": "RouterSecurityGroup"},
        }
    ]
    # The router sends port 8000 to the server's group only.
    to_server = [
        r for r in props(cfn, "RouterSecurityGroup")["SecurityGroupEgress"] if r["FromPort"] == 8000
    ]
    assert to_server == [
        {
            "Description": "Router to the transcription server",
            "IpProtocol": "tcp",
            "FromPort": 8000,
            "ToPort": 8000,
            "DestinationSecurityGroupId": {"Ref": "ServerSecurityGroup"},
        }
    ]


def test_only_the_nat_subnet_is_public(cfn: Template) -> None:
    subnets = resources_of(cfn, "AWS::EC2::Subnet")
    public = {s for s in subnets if is_public(cfn, s)}
    assert public == {"PublicSubnet"}
    nat_subnets = {
        ref(n["Properties"]["SubnetId"]) for n in resources_of(cfn, "AWS::EC2::NatGateway").values()
    }
    assert nat_subnets == public
    # Nothing else is ever placed in it: no function, interface or launch subnet names it.
    text = json.dumps({k: v for k, v in cfn["Resources"].items() if k not in _NAT_PLUMBING})
    assert '{"Ref": "PublicSubnet"}' not in text


_NAT_PLUMBING = {"PublicSubnet", "PublicSubnetRouteTableAssociation", "NatGateway"}


# ------------------------------------------------------------------ the router's AWS calls


def router_services(cfn: Template) -> set[str]:
    role = cfn["Resources"]["RouterFunctionRole"]
    services = set()
    for statement in policy_statements(role):
        for action in as_list(statement["Action"]):
            services.add(str(action).split(":", 1)[0])
    return services


def test_the_router_subnets_reach_every_aws_service_it_calls(cfn: Template) -> None:
    services = router_services(cfn)
    assert {"s3", "sqs", "dynamodb", "ssm", "events"} <= services
    for subnet in router_subnets(cfn):
        table = route_table_of(cfn, subnet)
        gateways = gateway_endpoint_services(cfn, table)
        # S3 and DynamoDB through the free gateway endpoints (audio, ECR layers off the NAT).
        assert {"s3", "dynamodb"} <= gateways
        # Everything else (SQS, SSM, EventBridge, webhooks) through the NAT gateway.
        via_nat = nat_route_to_the_internet(cfn, table)
        assert via_nat, subnet
        assert all(service in gateways or via_nat for service in services)


def test_workers_launch_into_the_same_private_subnets(cfn: Template) -> None:
    env = props(cfn, "LauncherFunction")["Environment"]["Variables"]
    joined = env["LAUNCH_SUBNET_IDS"]["Fn::Join"][1]
    assert [ref(s) for s in joined] == router_subnets(cfn)
    assert props(cfn, "WorkerSecurityGroup")["VpcId"] == {"Ref": "Vpc"}


# ------------------------------------------------------------------ the VPC's range (issue 18)

VPC_CIDR_PATTERN = re.compile(source()["Parameters"]["VpcCidr"]["AllowedPattern"])


@pytest.mark.parametrize(
    "cidr",
    [
        "0.0.0.0/0",
        "0.0.0.0/1",
        "::/0",
        "10.0.0.0/8",
        "10.42.0.0/15",
        "8.8.0.0/16",
        "172.32.0.0/16",
        "192.169.0.0/16",
        "10.256.0.0/16",
        "10.42.1.0/16",
        "10.42.0.0/24",
        "10.42.0.0/16 ",
    ],
)
def test_the_vpc_cidr_is_a_private_slash_16_and_nothing_wider(cidr: str) -> None:
    assert not VPC_CIDR_PATTERN.fullmatch(cidr)


@pytest.mark.parametrize(
    "cidr", ["10.42.0.0/16", "10.0.0.0/16", "172.16.0.0/16", "172.31.0.0/16", "192.168.0.0/16"]
)
def test_private_slash_16s_are_accepted(cidr: str) -> None:
    assert VPC_CIDR_PATTERN.fullmatch(cidr)

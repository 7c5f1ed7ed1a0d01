"""Network: a VPC over two or more AZs, public subnets (ALB, NAT) and private subnets (tasks, RDS).

Private subnets reach the internet (Pinecone, SQS, ECR) only through NAT gateways; nothing in
them has a public address. An S3 gateway endpoint (free) keeps image-layer pulls off the NAT.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    prefix: str
    region: str
    cidr: str
    az_count: int
    nat_gateway_count: int
    tags: dict[str, str]


class Network(pulumi.ComponentResource):
    """VPC, subnets, internet gateway, NAT gateways and route tables."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def tags(label: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{args.prefix}-{label}"}

        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        # Carve /20s (for a /16 VPC) out of the VPC: public ones first, private after.
        network = ipaddress.ip_network(args.cidr)
        blocks = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags("vpc"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=tags("public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for i in range(args.az_count):
            zone = zones.names[i]
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[i]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags(f"public-{i}"), "tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            public_subnets.append(public)
            private = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[args.az_count + i]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags(f"private-{i}"), "tier": "private"},
                opts=child,
            )
            private_subnets.append(private)

        nat_ids: list[pulumi.Output[str]] = []
        for i in range(args.nat_gateway_count):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags=tags(f"nat-{i}"), opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i}",
                allocation_id=eip.id,
                subnet_id=public_subnets[i].id,
                tags=tags(f"nat-{i}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            nat_ids.append(nat.id)

        private_route_tables: list[pulumi.Output[str]] = []
        for i, subnet in enumerate(private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}", vpc_id=vpc.id, tags=tags(f"private-{i}"), opts=child
            )
            aws.ec2.Route(
                f"{name}-private-default-{i}",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                # With fewer NAT gateways than AZs, AZs share them round-robin.
                nat_gateway_id=nat_ids[i % len(nat_ids)],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            private_route_tables.append(rt.id)

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_route_tables,
            tags=tags("s3-endpoint"),
            opts=child,
        )

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "nat_gateway_ids": nat_ids,
            }
        )

"""The edge: TLS certificate, sign-in and the load balancer's listeners.

By default the ALB serves HTTPS only: port 80 answers with a redirect to 443, and the 443
listener *authenticates every request* before forwarding it to the app, with either

* a Cognito user pool and its hosted UI (``authProvider=cognito``, the default): no self
  sign-up, users are created by an operator (``refarch deploy add-user EMAIL``), e-mail
  verified, TOTP MFA available; or
* any OpenID Connect provider (``authProvider=oidc``: the ``oidc*`` keys and the secret
  ``refarch:oidcClientSecret``).

The certificate is the given ``certificateArn``, or one ACM issues for ``domainName``,
validated through DNS (records created in ``hostedZoneId`` when given). ``unsafeNoTls`` and
``unsafeNoSignIn`` turn these off for a workshop; the plan and the policy pack warn about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

#: TLS 1.3 and 1.2 only.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class EdgeArgs:
    """Inputs of :class:`Edge`."""

    prefix: str
    alb_arn: pulumi.Input[str]
    alb_dns_name: pulumi.Input[str]
    alb_zone_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    tls: bool
    sign_in: bool
    domain_name: str | None
    hosted_zone_id: str | None
    certificate_arn: str | None
    auth_provider: str
    session_timeout_minutes: int
    protect_data: bool
    tags: dict[str, str]
    oidc: Mapping[str, str | None] = field(default_factory=dict)
    oidc_client_secret: pulumi.Input[str] | None = None


def _validation_record(options: Any) -> dict[str, str]:
    """The DNS record ACM wants for the (single) domain: name, type, value."""
    first = (options or [None])[0]
    return {
        "name": getattr(first, "resource_record_name", "") or "",
        "type": getattr(first, "resource_record_type", "") or "CNAME",
        "value": getattr(first, "resource_record_value", "") or "",
    }


class Edge(pulumi.ComponentResource):
    """Certificate, user pool (or OIDC), DNS records and the ALB listeners."""

    listeners: list[aws.lb.Listener]
    app_url: pulumi.Output[str]
    user_pool_id: pulumi.Output[str] | None
    certificate_validation: pulumi.Output[Any] | None

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:infra:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        forward = aws.lb.ListenerDefaultActionArgs(
            type="forward", target_group_arn=args.target_group_arn,
            order=2 if args.sign_in else 1,
        )
        self.user_pool_id = None
        self.certificate_validation = None
        self.listeners = []

        if not args.tls:
            # unsafeNoTls: plain HTTP straight to the app (a warning in the plan and the pack).
            self.listeners.append(aws.lb.Listener(
                f"{name}-http", load_balancer_arn=args.alb_arn, port=80, protocol="HTTP",
                default_actions=[forward], tags=args.tags, opts=child,
            ))
            host = args.domain_name or args.alb_dns_name
            self.app_url = pulumi.Output.format("http://{0}", host)
            self.register_outputs({"app_url": self.app_url})
            return

        assert args.domain_name, "TLS needs a domain name (the placeholder offline)"
        domain = args.domain_name
        certificate_arn = self._certificate(name, args, domain, child)
        actions: list[aws.lb.ListenerDefaultActionArgs] = []
        if args.sign_in:
            actions.append(self._authenticate(name, args, domain, child))
        actions.append(forward)
        self.listeners.append(aws.lb.Listener(
            f"{name}-https", load_balancer_arn=args.alb_arn, port=443, protocol="HTTPS",
            certificate_arn=certificate_arn, ssl_policy=SSL_POLICY, default_actions=actions,
            tags=args.tags, opts=child,
        ))
        self.listeners.append(aws.lb.Listener(
            f"{name}-http", load_balancer_arn=args.alb_arn, port=80, protocol="HTTP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                    port="443", protocol="HTTPS", status_code="HTTP_301"),
            )],
            tags=args.tags, opts=child,
        ))
        if args.hosted_zone_id:
            aws.route53.Record(
                f"{name}-alias", zone_id=args.hosted_zone_id, name=domain, type="A",
                aliases=[aws.route53.RecordAliasArgs(
                    name=args.alb_dns_name, zone_id=args.alb_zone_id,
                    evaluate_target_health=True)],
                opts=child,
            )
        self.app_url = pulumi.Output.from_input(f"https://{domain}")
        self.register_outputs({"app_url": self.app_url, "user_pool_id": self.user_pool_id})

    def _certificate(self, name: str, args: EdgeArgs, domain: str,
                     child: pulumi.ResourceOptions) -> pulumi.Input[str]:
        if args.certificate_arn:
            return args.certificate_arn
        certificate = aws.acm.Certificate(
            f"{name}-certificate", domain_name=domain, validation_method="DNS",
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self),
        )
        option = certificate.domain_validation_options.apply(_validation_record)
        self.certificate_validation = option
        fqdns: list[pulumi.Input[str]] | None = None
        if args.hosted_zone_id:
            record = aws.route53.Record(
                f"{name}-certificate-validation",
                zone_id=args.hosted_zone_id,
                name=option.apply(lambda o: o["name"]),
                type=option.apply(lambda o: o["type"]),
                records=[option.apply(lambda o: o["value"])],
                ttl=300, allow_overwrite=True, opts=child,
            )
            fqdns = [record.fqdn]
        # Without a hosted zone this waits until someone adds the CNAME the
        # certificate_validation output shows (ACM gives up after 72 hours).
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate", certificate_arn=certificate.arn,
            validation_record_fqdns=fqdns, opts=child,
        )
        return validation.certificate_arn

    def _authenticate(self, name: str, args: EdgeArgs, domain: str,
                      child: pulumi.ResourceOptions) -> aws.lb.ListenerDefaultActionArgs:
        timeout = args.session_timeout_minutes * 60
        if args.auth_provider == "oidc":
            if args.oidc_client_secret is None:
                raise pulumi.RunError("authProvider=oidc needs the secret config "
                                      "refarch:oidcClientSecret (pulumi config set --secret)")
            oidc = args.oidc
            return aws.lb.ListenerDefaultActionArgs(
                type="authenticate-oidc", order=1,
                authenticate_oidc=aws.lb.ListenerDefaultActionAuthenticateOidcArgs(
                    issuer=str(oidc["oidc_issuer"]),
                    authorization_endpoint=str(oidc["oidc_authorization_endpoint"]),
                    token_endpoint=str(oidc["oidc_token_endpoint"]),
                    user_info_endpoint=str(oidc["oidc_user_info_endpoint"]),
                    client_id=str(oidc["oidc_client_id"]),
                    client_secret=pulumi.Output.secret(args.oidc_client_secret),
                    scope="openid email", session_timeout=timeout,
                    on_unauthenticated_request="authenticate",
                ),
            )
        pool = aws.cognito.UserPool(
            f"{name}-users",
            name=f"{args.prefix}-users",
            # Nobody signs themselves up: an operator creates each user.
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=True),
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12, require_lowercase=True, require_uppercase=True,
                require_numbers=True, require_symbols=False,
                temporary_password_validity_days=3),
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(
                enabled=True),
            deletion_protection="ACTIVE" if args.protect_data else "INACTIVE",
            tags=args.tags, opts=child,
        )
        # Hosted-UI domain prefixes are global across AWS: add a random suffix.
        suffix = random.RandomString(f"{name}-auth-suffix", length=6, special=False,
                                     upper=False, opts=child)
        hosted_ui = aws.cognito.UserPoolDomain(
            f"{name}-hosted-ui", user_pool_id=pool.id,
            domain=pulumi.Output.format("{0}-{1}", args.prefix, suffix.result), opts=child,
        )
        client = aws.cognito.UserPoolClient(
            f"{name}-alb-client",
            name=f"{args.prefix}-alb",
            user_pool_id=pool.id,
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=["openid", "email"],
            callback_urls=[f"https://{domain}/oauth2/idpresponse"],
            supported_identity_providers=["COGNITO"],
            prevent_user_existence_errors="ENABLED",
            opts=child,
        )
        self.user_pool_id = pool.id
        return aws.lb.ListenerDefaultActionArgs(
            type="authenticate-cognito", order=1,
            authenticate_cognito=aws.lb.ListenerDefaultActionAuthenticateCognitoArgs(
                user_pool_arn=pool.arn, user_pool_client_id=client.id,
                user_pool_domain=hosted_ui.domain, session_timeout=timeout,
                on_unauthenticated_request="authenticate", scope="openid email",
            ),
        )

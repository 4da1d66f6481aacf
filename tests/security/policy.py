"""The access matrix's policy oracle: for every operation of every contract, who may get a 2xx.

``COVERED`` is the explicit table: operationId -> (policy, the planted tool whose record the path
names, or None). A contract operation missing here fails the matrix (a new operation must be
thought about). Policies are supersets of what the services allow (a 4xx for an allowed caller is
fine; a 2xx for a caller outside the policy is a finding).
"""

from __future__ import annotations

from collections.abc import Callable

from secworld import STAFF_ROLES, Caller, Record

# --- policies: (caller, effective council of the request, case id in the path, record or None,
#                council id in the path or None) -> may get 2xx


def public(c: Caller, **_) -> bool:
    return True


def signed_in(c: Caller, **_) -> bool:
    return c.signed_in


def person(c: Caller, **_) -> bool:
    return c.is_person and c.council_id is not None


def never(c: Caller, **_) -> bool:
    """Operator-only or gateway-only operations: no role of the matrix may."""
    return False


def same_council(c: Caller, council=None, **_) -> bool:
    return c.signed_in and council is not None and c.council_id == council


def person_of_council(c: Caller, council=None, **_) -> bool:
    return c.is_person and council is not None and c.council_id == council


def admin_of(c: Caller, council=None, **_) -> bool:
    return c.is_person and "council_admin" in c.roles and (council is None or c.council_id == council)


def council_staff(c: Caller, **_) -> bool:
    return c.is_person and c.is_staff and c.council_id is not None


def staff_or_self(c: Caller, person_id=None, **_) -> bool:
    return c.is_person and (c.is_staff or c.person_id == person_id)


def _on_case(c: Caller, case_id) -> str | None:
    return c.cases.get(case_id) if c.is_person else None


def case_member(c: Caller, case_id=None, record: Record | None = None, **_) -> bool:
    if _on_case(c, case_id) is None:
        return False
    return record is None or _record_ok(c, case_id, record)


def case_staff(c: Caller, case_id=None, record: Record | None = None, **_) -> bool:
    return _on_case(c, case_id) in STAFF_ROLES and case_member(c, case_id=case_id, record=record)


def manager_or_admin(c: Caller, case_id=None, **_) -> bool:
    return admin_of(c) or _on_case(c, case_id) == "manager"


def author(c: Caller, case_id=None, record: Record | None = None, **_) -> bool:
    return case_member(c, case_id=case_id, record=record) and record is not None and c.person_id == record.author


def staff_or_author(c: Caller, case_id=None, record: Record | None = None, **_) -> bool:
    return case_staff(c, case_id=case_id, record=record) or author(c, case_id=case_id, record=record)


def admin_or_case_manager(c: Caller, case_id=None, **_) -> bool:
    """Audit trails: a council admin of the caller's own council, or the case's manager."""
    return admin_of(c) or _on_case(c, case_id) == "manager"


def owner(c: Caller, record: Record | None = None, **_) -> bool:
    return record is not None and c.council_id == record.council_id and c.person_id == record.author


def _record_ok(c: Caller, case_id, record: Record) -> bool:
    # the record must be the one the path names: same council as the caller, same case, visible
    return record.council_id == c.council_id and record.case_id == case_id and record.visible_to(c)


Policy = Callable[..., bool]

# operationId -> (policy, the tool of the record the path names)
COVERED: dict[str, tuple[Policy, str | None]] = {
    "chassis.health.check": (public, None),
    # gateway
    "gateway.api.health": (public, None),
    "gateway.api.jwks": (public, None),
    "gateway.api.create_session": (public, None),
    "gateway.api.demo_people": (public, None),
    "gateway.api.delete_session": (signed_in, None),
    "gateway.api.get_me": (signed_in, None),
    "gateway.api.list_tools": (signed_in, None),
    # cases (the platform's case directory)
    "cases.api.get_person": (staff_or_self, None),
    "cases.api.put_person": (admin_of, None),
    "cases.api.get_memberships": (never, None),  # the gateway's own look-up
    "cases.api.get_case": (case_member, None),
    "cases.api.put_case": (admin_of, None),
    "cases.api.put_member": (manager_or_admin, None),
    "cases.api.remove_member": (manager_or_admin, None),
    "cases.api.my_cases": (person, None),
    # catalogue
    "catalogue.api.list_tools": (signed_in, None),
    "catalogue.api.get_tool": (signed_in, None),
    "catalogue.api.publish_tool": (never, None),  # platform operator
    "catalogue.api.list_councils": (signed_in, None),
    "catalogue.api.get_council": (same_council, None),
    "catalogue.api.put_council": (never, None),  # platform operator
    "catalogue.api.list_council_tools": (admin_of, None),
    "catalogue.api.enable_tool": (admin_of, None),
    "catalogue.api.disable_tool": (admin_of, None),
    "catalogue.api.tool_history": (admin_of, None),
    "catalogue.api.enabled_tools": (person_of_council, None),
    # timeline
    "timeline.api.list_entries": (case_member, None),
    "timeline.api.create_entry": (case_member, None),
    "timeline.api.get_entry": (case_member, "timeline"),
    "timeline.api.edit_entry": (author, "timeline"),
    "timeline.api.list_comments": (case_member, "timeline"),
    "timeline.api.add_comment": (case_member, "timeline"),
    # documents
    "documents.api.list_documents": (case_member, None),
    "documents.api.upload_document": (case_member, None),
    "documents.api.get_document": (case_member, "documents"),
    "documents.api.delete_document": (case_staff, "documents"),
    "documents.api.restore_document": (case_staff, "documents"),
    "documents.api.download_latest": (case_member, "documents"),
    "documents.api.add_version": (staff_or_author, "documents"),
    "documents.api.download_version": (case_member, "documents"),
    # messaging
    "messaging.api.list_threads": (case_member, None),
    "messaging.api.start_thread": (case_member, None),
    "messaging.api.get_thread": (case_member, "messaging"),
    "messaging.api.set_sharing": (case_member, "messaging"),
    "messaging.api.list_messages": (case_member, "messaging"),
    "messaging.api.send_message": (case_member, "messaging"),
    "messaging.api.mark_read": (case_member, "messaging"),
    "messaging.api.mark_needs_reply": (case_member, "messaging"),
    "messaging.api.clear_needs_reply": (case_member, "messaging"),
    "messaging.api.my_unread": (person, None),
    "messaging.api.my_awaiting_reply": (person, None),
    # plans
    "plans.api.list_plans": (case_member, None),
    "plans.api.create_plan": (case_staff, None),
    "plans.api.get_plan": (case_member, "plans"),
    "plans.api.change_plan": (case_staff, "plans"),
    "plans.api.save_draft": (case_staff, "plans"),
    "plans.api.publish": (case_staff, "plans"),
    "plans.api.list_versions": (case_member, "plans"),
    "plans.api.get_version": (case_member, "plans"),
    "plans.api.diff_versions": (case_member, "plans"),
    "plans.api.list_agreements": (case_member, "plans"),
    "plans.api.record_agreement": (case_member, "plans"),
    "plans.api.list_reviews": (case_member, "plans"),
    "plans.api.review": (case_staff, "plans"),
    "plans.api.list_comments": (case_member, "plans"),
    "plans.api.add_comment": (case_member, "plans"),
    # referrals
    "referrals.api.get_services": (council_staff, None),
    "referrals.api.put_services": (admin_of, None),
    "referrals.api.get_script": (council_staff, None),
    "referrals.api.put_script": (admin_of, None),
    "referrals.api.list_referrals": (case_member, None),
    "referrals.api.create_referral": (case_staff, None),
    "referrals.api.get_referral": (case_member, "referrals"),
    "referrals.api.edit_referral": (case_staff, "referrals"),
    "referrals.api.share_referral": (case_staff, "referrals"),
    "referrals.api.submit": (case_staff, "referrals"),
    "referrals.api.accept": (case_staff, "referrals"),
    "referrals.api.decline": (case_staff, "referrals"),
    "referrals.api.request_info": (case_staff, "referrals"),
    "referrals.api.answer_info": (case_member, "referrals"),
    "referrals.api.close": (case_staff, "referrals"),
    "referrals.api.start_conversation": (case_staff, None),
    "referrals.api.get_conversation": (owner, "referrals-conversation"),
    "referrals.api.answer_conversation": (owner, "referrals-conversation"),
    "referrals.api.back_conversation": (owner, "referrals-conversation"),
    # sign-in (gateway.signin_api; the gateway.api names are the earlier ones of the same operations)
    "gateway.signin_api.create_session": (public, None),
    "gateway.signin_api.delete_session": (signed_in, None),
    "gateway.signin_api.oidc_start": (public, None),
    "gateway.signin_api.oidc_callback": (public, None),
    "gateway.signin_api.accept_invitation": (public, None),
    "gateway.signin_api.request_password_reset": (public, None),
    "gateway.signin_api.complete_password_reset": (public, None),
    "gateway.signin_api.issue_token": (public, None),
    "gateway.signin_api.start_totp": (signed_in, None),
    "gateway.signin_api.confirm_totp": (signed_in, None),
    # the second factor a council requires of staff after OIDC: reachable without a session, but only with
    # the pending second-factor cookie of an OIDC callback, which no caller of the matrix holds
    "gateway.signin_api.second_factor_status": (never, None),
    "gateway.signin_api.second_factor_enrol": (never, None),
    "gateway.signin_api.second_factor_confirm": (never, None),
    "gateway.signin_api.create_invitation": (council_staff, None),
    "gateway.signin_api.put_staff_account": (admin_of, None),
    "gateway.signin_api.put_person_status": (admin_of, None),
    "gateway.signin_api.list_clients": (admin_of, None),
    "gateway.signin_api.create_client": (admin_of, None),
    "gateway.signin_api.delete_client": (admin_of, None),
    # sign-in settings of a council (catalogue): the council's admin (or the operator)
    "catalogue.api.get_sign_in": (admin_of, None),
    "catalogue.api.put_sign_in": (admin_of, None),
    # audit trails (every service, and the gateway's view across all of them)
    "chassis.audit_api.search": (admin_or_case_manager, None),
    "gateway.oversight.audit": (admin_or_case_manager, None),
    # subject access: a council admin of that council; the service exports are the gateway's look-ups
    "gateway.oversight.subject_access": (admin_of, None),
    "cases.api.export_person": (admin_of, None),
    "timeline.api.export_person": (admin_of, None),
    "documents.api.export_person": (admin_of, None),
    "messaging.api.export_person": (admin_of, None),
    "plans.api.export_person": (admin_of, None),
    "referrals.api.export_person": (admin_of, None),
}

# operations whose answer is what one person (the path's person_id, "pat") may see, shown to a council admin
SUBJECT_ACCESS = {"gateway.oversight.subject_access", *(f"{s}.api.export_person" for s in
                                                        ("cases", "timeline", "documents", "messaging", "plans",
                                                         "referrals"))}
SUBJECT = "pat"
# operations that take the object's case as a query parameter
CASE_QUERY = {"chassis.audit_api.search", "gateway.oversight.audit"}

# the gateway's proxy routes are served in front of its contract: every request through them is one of
# the services' operations above, so they are covered by those
PROXY_ROUTES = {f"gateway.api.proxied_{t}_{m}" for t in ("tool", "catalogue", "cases")
                for m in ("get", "post", "put", "patch", "delete")}

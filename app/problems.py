"""What each problem `code` means and what to do about it: the pages `type` points to (`/problems/<code>`)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ProblemKind:
    status: int
    meaning: str
    action: str


_KEY = "Send `Authorization: Bearer <key>` with a key created for this caller"

PROBLEMS: dict[str, ProblemKind] = {
    # --- requests the service cannot read or route
    "validation_failed": ProblemKind(
        422,
        "One or more values of the request are missing or invalid; `errors` lists each field, where it is "
        "(`body.country`, `query.limit`) and what is wrong. Unknown query parameters and body fields are refused too.",
        "Correct the listed fields (the OpenAPI document at /openapi.json gives each one's format) and send again.",
    ),
    "malformed_body": ProblemKind(
        400,
        "The body could not be read: not UTF-8, not JSON, or not the declared media type.",
        "Send a UTF-8 JSON body with `Content-Type: application/json` (CSV routes: `text/csv`).",
    ),
    "unsupported_media_type": ProblemKind(
        415,
        "The body was sent as another media type than the route reads (JSON routes take `application/json`).",
        "Send the body with `Content-Type: application/json` (CSV routes: `text/csv`).",
    ),
    "route_not_found": ProblemKind(404, "No route has this path.", "Check the path against /openapi.json."),
    "method_not_allowed": ProblemKind(
        405,
        "The path exists but does not answer this method.",
        "Use one of the methods the `Allow` header lists.",
    ),
    "http_error": ProblemKind(400, "The HTTP request was refused before reaching the service.", "Read `detail`."),
    "internal_error": ProblemKind(
        500,
        "Something failed inside the service; nothing the request changed was kept.",
        "Retry later; if it persists, report the `request_id` of the answer, which names the failure in the logs.",
    ),
    "database_unavailable": ProblemKind(
        503,
        "The database could not be reached or failed; nothing the request changed was kept.",
        "Retry after the `Retry-After` seconds.",
    ),
    "retry": ProblemKind(
        503,
        "The request's transaction lost a race with another one (a deadlock or serialization failure); "
        "nothing it changed was kept.",
        "Send the same request again after the `Retry-After` seconds.",
    ),
    "body_too_large": ProblemKind(
        413,
        "The request body is larger than the service accepts (PARTNERS_MAX_BODY_BYTES; customer imports "
        "have a larger limit); nothing was read or changed.",
        "Send a smaller body; split a large import into several.",
    ),
    "headers_too_large": ProblemKind(
        431,
        "The request's headers together exceed the limit (PARTNERS_MAX_HEADER_BYTES).",
        "Send fewer or shorter headers.",
    ),
    "json_too_deep": ProblemKind(
        422, "The JSON body nests deeper than the service reads; nothing was changed.", "Send a flatter document."
    ),
    "conflict": ProblemKind(
        409,
        "The change clashed with data written at the same moment (a unique value taken in between).",
        "Read the object again and retry the change if it still applies.",
    ),
    "rate_limited": ProblemKind(
        429,
        "Too many requests of this kind came from this address within the window.",
        "Wait the `Retry-After` seconds before trying again.",
    ),
    "invalid_cursor": ProblemKind(
        422, "The `cursor` is not one this service issued.", "Pass back the `next_cursor` of a previous page as it is."
    ),
    "not_found": ProblemKind(404, "The object does not exist.", "Check its id."),
    "invalid": ProblemKind(422, "A rule refused the input.", "Read `detail`, correct the request and send again."),
    "invalid_transition": ProblemKind(
        409, "The object's current state does not allow this action.", "Read the object's state first."
    ),
    # --- who is calling
    "missing_api_key": ProblemKind(401, "The request carries no API key.", _KEY + "."),
    "invalid_api_key": ProblemKind(
        401, "The API key is unknown or revoked.", _KEY + "; ask an admin for a new key if yours was revoked."
    ),
    "unauthenticated": ProblemKind(401, "The request is not authenticated.", _KEY + "."),
    "admin_key_required": ProblemKind(
        403, "The route is for admins and the key is not an admin key.", "Use an admin key."
    ),
    "scope_missing": ProblemKind(
        403,
        "The admin key lacks the scope the route needs (`read` or `write`).",
        "Use a key with that scope; an admin with `write` can create one (`POST /v1/api-keys`).",
    ),
    "partner_key_required": ProblemKind(
        403, "The route is for the partner itself.", "Call it with the partner's own key."
    ),
    "admin_or_partner_key_required": ProblemKind(
        403,
        "The route is for admins and partners (the program's terms) and the key is neither.",
        "Use an admin key with the `read` scope or a partner's key.",
    ),
    "store_key_required": ProblemKind(
        403, "The route is for the web store.", "Call it with a store key (`partners create-admin-key --kind store`)."
    ),
    "forbidden": ProblemKind(403, "The key may not do this.", "Use a key of the right kind and scope."),
    "metrics_token_required": ProblemKind(
        401,
        "`/metrics` is protected by a token (PARTNERS_METRICS_TOKEN) and the request did not send it.",
        "Configure the scraper with `Authorization: Bearer <the token>`.",
    ),
    # --- API keys
    "api_key_not_found": ProblemKind(
        404, "No such key, or it belongs to someone else.", "List your keys for their ids."
    ),
    "api_key_revoked": ProblemKind(
        422, "A revoked key cannot be rotated.", "Create a new key instead (`POST .../api-keys`)."
    ),
    "unknown_scope": ProblemKind(
        422, "A scope named does not exist for this kind of key.", "Use the scopes `detail` lists as allowed."
    ),
    "invalid_key_owner": ProblemKind(
        422, "Partner keys, and only they, belong to a partner.", "Give `partner_id` for a partner key, none otherwise."
    ),
    # --- partners and agreements
    "partner_not_found": ProblemKind(
        404,
        "No partner has this id, or the key belongs to another partner (which must not learn that it exists).",
        "Check the id; a partner reads only itself.",
    ),
    "partner_suspended": ProblemKind(
        403,
        "A suspended partner's key changes nothing while it is suspended (no keys, registrations, offers, "
        "licences, profile edits or webhook subscriptions); it still reads, and may revoke its own keys.",
        "Wait until an admin reinstates the partner.",
    ),
    "partner_already_registered": ProblemKind(
        409, "A partner with this contact e-mail is registered already.", "Use that partner's key, or another e-mail."
    ),
    "partner_not_active": ProblemKind(
        409,
        "The partner is not active, and the action needs an active partner (R04).",
        "Have an admin approve or reinstate it.",
    ),
    "partner_terminated": ProblemKind(
        403,
        "The partner is terminated; it can no longer act (its own key gets 403 on every write, and may still "
        "read and revoke its keys).",
        "Nothing: termination is final.",
    ),
    "invalid_status_transition": ProblemKind(
        409,
        "The partner's status does not allow this change (e.g. reinstating an active partner).",
        "Read the partner's status; the allowed changes are approve, suspend, reinstate and terminate.",
    ),
    "field_not_editable": ProblemKind(422, "The field cannot be changed.", "Leave it out of the request."),
    "field_required": ProblemKind(422, "The field cannot be emptied.", "Give it a value, or leave it out."),
    "no_agreement": ProblemKind(
        404, "No partner agreement has been published yet.", "An admin publishes one (`POST /v1/agreements`)."
    ),
    "agreement_version_not_found": ProblemKind(
        404, "No published agreement has this version.", "Read `GET /v1/agreements` for the versions."
    ),
    "agreement_version_not_current": ProblemKind(
        422,
        "A registration accepts the current agreement version only.",
        "Read `GET /v1/agreements/current` and accept that version.",
    ),
    "agreement_version_exists": ProblemKind(
        409, "This agreement version exists already.", "Publish under a new version."
    ),
    "accept_by_in_past": ProblemKind(422, "`accept_by` lies in the past.", "Give a date in the future."),
    "accept_by_before_previous": ProblemKind(
        422, "`accept_by` comes before that of the previous version.", "Give a later date."
    ),
    "brand_misspelled": ProblemKind(
        422,
        'The text spells the vendor\'s name otherwise than "Qalyptus" (R20).',
        'Write it "Qalyptus": capital Q, the rest lower case.',
    ),
    # --- the policy's limits (R16-R18, R20, R22)
    "vat_id_invalid": ProblemKind(
        422,
        "The VAT id does not follow its country's rules (checked with python-stdnum); `detail` says why.",
        "Correct the VAT id (with or without its country prefix) or leave it out.",
    ),
    "own_company": ProblemKind(
        422,
        "The customer is the partner's own company: its VAT id, or its e-mail or website domain (or a subdomain "
        "of it), is the partner's own (R22). A partner's own company is never its customer.",
        "None for this customer; a licence for the partner's own use is a not-for-resale licence (R17).",
    ),
    "order_flag_not_found": ProblemKind(404, "No such order flag.", "List them with `GET /v1/order-flags`."),
    "order_flag_resolved": ProblemKind(
        409, "The order flag was resolved already; `detail` gives its resolution.", "None: it is closed."
    ),
    "nfr_purpose_invalid": ProblemKind(
        422,
        "A not-for-resale licence is for demonstration, training or evaluation only (R17).",
        "Name one of those purposes.",
    ),
    "nfr_acknowledgement_missing": ProblemKind(
        422,
        "A not-for-resale licence needs the partner's acknowledgement that it is not for its production needs "
        "nor for use inside a product or service sold (R17).",
        "Send `acknowledged: true`.",
    ),
    "directory_review_not_found": ProblemKind(
        404, "No such directory review.", "List them with `GET /v1/directory-reviews`."
    ),
    "directory_review_decided": ProblemKind(
        409,
        "The directory review is no longer pending: it was decided, or a newer text superseded it (R18).",
        "Review the partner's pending text, if any.",
    ),
    "company_name_not_approvable": ProblemKind(
        409,
        'A company name that spells the vendor\'s name otherwise than "Qalyptus" cannot be approved (R20); it '
        "leaves the queue when the partner changes it.",
        "Ask the partner to correct its company name; meanwhile hide it from the directory if needed.",
    ),
    # --- registrations and customers (R05, R06, R07)
    "strong_identifier_missing": ProblemKind(
        422,
        "A registration needs a strong identifier of the customer (R05).",
        "Give `vat_id`, the company's own e-mail domain, or `store_customer_id`.",
    ),
    "free_mail_domain_only": ProblemKind(
        422,
        "The only identifier given is a free-mail domain, which does not identify a company (R05).",
        "Give `vat_id`, the company's own domain or `store_customer_id`.",
    ),
    "identifier_invalid": ProblemKind(422, "An identifier is not valid.", "Correct the VAT id, domain or store id."),
    "already_a_customer": ProblemKind(
        409,
        "The customer has bought from the vendor already; only new customers can be registered (R06).",
        "None: the customer is not new.",
    ),
    "in_active_sales_process": ProblemKind(
        409,
        "The vendor is in an active sales process with this customer (R06).",
        "Try again after the date `detail` gives.",
    ),
    "already_registered_by_you": ProblemKind(
        409, "You have a live registration for this customer already.", "Use it: its window is still open."
    ),
    "registered_by_another_partner": ProblemKind(
        409, "Another partner has a live registration for this customer (R06).", "None while it is live."
    ),
    "cool_off": ProblemKind(
        409,
        "Your earlier registration of this customer expired unconverted; you may register it again after "
        "the cool-off (R06).",
        "Try again after the date `detail` gives.",
    ),
    "registration_not_found": ProblemKind(
        404, "No such registration of this partner.", "List the partner's registrations."
    ),
    "registration_not_open": ProblemKind(409, "The registration is no longer live or offered.", "None: it has ended."),
    "customer_not_found": ProblemKind(404, "No such customer.", "Check the id."),
    "customer_busy": ProblemKind(409, "The customer changed while the request ran.", "Send the request again."),
    "identifiers_match_several_customers": ProblemKind(
        409, "The identifiers given belong to different known customers.", "Give identifiers of one customer only."
    ),
    "until_in_past": ProblemKind(422, "`until` lies in the past.", "Give a date in the future."),
    "csv_too_large": ProblemKind(422, "The CSV is larger than 5 MB.", "Split it into several imports."),
    "csv_unreadable": ProblemKind(422, "The body is not readable CSV in UTF-8.", "Save the file as UTF-8 CSV."),
    "csv_empty": ProblemKind(422, "The CSV has no rows.", "Add rows under the header."),
    "csv_header_invalid": ProblemKind(
        422,
        "The CSV header must name company and country, and may name vat_id, domain, store_customer_id.",
        "Fix the header row.",
    ),
    "csv_row_invalid": ProblemKind(422, "A CSV line holds invalid values; `line` names it.", "Correct that line."),
    # --- leads (R19) and not-for-resale licences (R17)
    "lead_not_found": ProblemKind(404, "No such lead.", "Check the id."),
    "lead_not_open": ProblemKind(409, "The lead is offered or accepted already.", "Read its history."),
    "lead_exhausted": ProblemKind(409, "No partner could take the lead.", "Read its history for the reasons."),
    "lead_offer_not_found": ProblemKind(404, "No such lead offer for this partner.", "List the partner's offers."),
    "lead_offer_refused": ProblemKind(
        409, "The partner chosen cannot take the lead; `detail` says why.", "Choose another partner."
    ),
    "offer_not_open": ProblemKind(409, "The offer was accepted, declined or expired already.", "None: it is closed."),
    "nfr_not_found": ProblemKind(404, "No such not-for-resale licence.", "Check the id."),
    "nfr_limit_reached": ProblemKind(
        409,
        "The partner holds the most not-for-resale licences of this product the program gives (R17).",
        "Return one first.",
    ),
    # --- program terms
    "no_terms": ProblemKind(
        404, "No program terms were in force at that moment.", "Ask for a moment covered by a terms version."
    ),
    "effective_from_not_in_future": ProblemKind(
        422, "New terms must take effect in the future; past orders keep their terms.", "Give a later `effective_from`."
    ),
    "window_invalid": ProblemKind(
        422,
        "A terms preview's window of history is not one: its last quarter comes before its first, lies after the "
        "current quarter, or the window holds more than 12 quarters.",
        "Give `first_quarter` and `last_quarter` in order, at most the current quarter, or leave them out for the last "
        "four closed quarters.",
    ),
    "preview_not_found": ProblemKind(
        404,
        "No such terms preview: it never existed or its day is over (a preview is kept a day after it finished, and "
        "with the terms version published from its draft).",
        "Ask for a new preview with `POST /v1/program/terms/preview`.",
    ),
    "terms_version_overlap": ProblemKind(
        409, "A terms version already takes effect at or after that moment.", "Give a later `effective_from`."
    ),
    "sku_exists": ProblemKind(409, "The SKU is in every terms version already.", "Nothing to add."),
    "unknown_sku": ProblemKind(
        422, "An SKU is not in the program terms.", "Add it (`POST /v1/program/skus`) or correct it."
    ),
    # --- store webhooks
    "webhook_signature_missing": ProblemKind(
        401,
        "A webhook needs the headers webhook-id, webhook-timestamp and webhook-signature; nothing was written.",
        "Sign the event as the README's Store webhooks section shows.",
    ),
    "webhook_signature_invalid": ProblemKind(
        401,
        "No signature matches a configured secret; nothing was written.",
        "Sign with a secret in PARTNERS_WEBHOOK_SECRETS.",
    ),
    "webhook_timestamp_invalid": ProblemKind(401, "webhook-timestamp is not Unix seconds.", "Send Unix seconds."),
    "webhook_timestamp_stale": ProblemKind(
        401,
        "webhook-timestamp is more than 5 minutes from the service's clock.",
        "Send events promptly; check the clocks.",
    ),
    "webhook_event_malformed": ProblemKind(
        422,
        "The event is signed but does not follow the schema; its raw body was kept and nothing applied.",
        "Fix the fields `errors` lists and send it again under a new webhook-id.",
    ),
    "webhook_event_not_found": ProblemKind(404, "No such stored event.", "List them with `GET /v1/webhook-events`."),
    "event_not_parked": ProblemKind(409, "Only parked events are replayed.", "None: the event was applied already."),
    "level_pending": ProblemKind(
        503,
        "Store events accepted before this quote may still change the partner's level and are not applied yet "
        "(R03a, R12): the service never quotes with a level about to change.",
        "Ask again after the `Retry-After` seconds.",
    ),
    "unavailable": ProblemKind(503, "The service cannot answer this now.", "Retry after the `Retry-After` seconds."),
    "schema_incompatible": ProblemKind(
        503,
        "The database is at a migration this build does not fit (behind it, or a later one that does not "
        "declare it compatible): this instance applies no rules to it.",
        "Send the request to an instance of the build the database was migrated for (`/health/ready` says "
        "which revisions), or run `partners migrate` when the database is behind.",
    ),
    "event_type_not_for_partners": ProblemKind(
        422,
        "Partners read only their own events of the types listed in the operation's description.",
        "Leave out the event types `detail` names.",
    ),
    # --- outbound webhooks
    "unknown_event_type": ProblemKind(
        422, "No domain event has this type.", "Pick types from the catalogue (README, `webhooks` in /openapi.json)."
    ),
    "no_event_types": ProblemKind(422, "A subscription needs at least one event type.", "Give `event_types`."),
    "webhook_url_invalid": ProblemKind(
        422, "The target is not an absolute http(s) URL without credentials.", "Give a URL like https://host/path."
    ),
    "webhook_target_not_global": ProblemKind(
        422,
        "In production, webhooks go only to globally routable addresses: this target is a loopback, private, "
        "link-local or local name.",
        "Give a public https endpoint (PARTNERS_OUTBOUND_ALLOW_PRIVATE=true lifts the rule, e.g. in development).",
    ),
    "webhook_target_not_https": ProblemKind(
        422, "In production, webhook targets must use https.", "Give an https URL."
    ),
    "webhook_target_unresolved": ProblemKind(
        422, "The target's name does not resolve.", "Check the host name, then try again."
    ),
    "webhook_subscription_not_found": ProblemKind(
        404, "No such webhook subscription (of this partner).", "List the subscriptions."
    ),
    "webhook_subscription_disabled": ProblemKind(
        409,
        "The subscription is disabled (by a caller, or after 5 days of failed deliveries).",
        "Fix the receiver, then `PATCH` it with `enabled: true`.",
    ),
    "webhook_delivery_not_found": ProblemKind(
        404, "No such delivery of this subscription.", "Read the subscription's delivery log."
    ),
    "webhook_delivery_in_flight": ProblemKind(
        409, "The delivery is being sent right now.", "Read the log in a moment; retry it then if it failed."
    ),
    # --- statements and money (R16)
    "statement_not_found": ProblemKind(404, "No such statement of this partner.", "List the partner's statements."),
    "statement_not_draft": ProblemKind(409, "Only a draft statement can be approved.", "None: it is approved or paid."),
    "statement_not_approved": ProblemKind(409, "Only an approved statement can be marked paid.", "Approve it first."),
    "statement_already_paid": ProblemKind(
        409, "The statement was paid already under another payment reference.", "Check the reference."
    ),
    "quarter_not_over": ProblemKind(409, "The quarter has not ended yet.", "Close it after the moment `detail` gives."),
    "previous_quarter_open": ProblemKind(
        409, "Quarters close in order; an earlier one is open.", "Close that quarter first."
    ),
    "adjustment_zero": ProblemKind(422, "An adjustment of 0 changes nothing.", "Give a non-zero amount."),
    "currency_missing": ProblemKind(422, "A money adjustment needs its currency.", "Give `currency`."),
    "idempotency_key_reused": ProblemKind(
        422, "This Idempotency-Key was used with another request body.", "Use a new key for a new request."
    ),
    "idempotency_claim_lost": ProblemKind(
        409,
        "This request outlived its claim on the Idempotency-Key and another request with the same key took it "
        "over; nothing was applied by this one.",
        "Send the request again with the same key to get the answer of the request that applied it.",
    ),
    "idempotency_in_flight": ProblemKind(
        409, "A request with this Idempotency-Key is still in progress.", "Retry in a moment with the same key."
    ),
    # --- payee details and the self-billing agreement
    "payee_details_not_found": ProblemKind(
        404,
        "The partner has not given its payee details yet.",
        "The partner (or an admin for it) gives them with `PUT /v1/partners/{partner_id}/payee-details`.",
    ),
    "iban_invalid": ProblemKind(
        422,
        "The IBAN is not valid: its check digits are wrong, its country is unknown, or its length or format is not "
        "its country's (checked with schwifty); `detail` says which.",
        "Copy the IBAN again from the bank's statement; spaces may be left in.",
    ),
    "bic_invalid": ProblemKind(
        422, "The BIC is not 8 or 11 letters and digits naming a known country.", "Copy the BIC again from the bank."
    ),
    "bic_mismatch": ProblemKind(
        422,
        "The BIC is of a bank in another country than the IBAN's account, or, where the bank registry knows the "
        "IBAN's bank, of another bank.",
        "Give the BIC of the bank that keeps the account (the bank's statement shows both).",
    ),
    "vat_id_required": ProblemKind(
        422, "A VAT-registered payee must give its VAT id.", "Give `vat_id`, or send `vat_registered: false`."
    ),
    "no_self_billing_agreement": ProblemKind(
        404,
        "No self-billing agreement has been published yet.",
        "An admin publishes one (`POST /v1/self-billing-agreements`).",
    ),
    "self_billing_version_not_found": ProblemKind(
        404,
        "No published self-billing agreement has this version.",
        "Read `GET /v1/self-billing-agreements` for the versions.",
    ),
    "self_billing_version_not_current": ProblemKind(
        409,
        "Only the self-billing agreement version in force can be accepted; a newer one was published.",
        "Read `GET /v1/self-billing-agreements/current` and accept that version.",
    ),
    "self_billing_version_exists": ProblemKind(
        409, "This self-billing agreement version exists already.", "Publish under a new version."
    ),
    # --- payout runs and invoices
    "statement_in_payment": ProblemKind(
        409,
        "The statement is in a payout run: that run's transfer pays it.",
        "Confirm the run executed (`POST /v1/payout-runs/{run_id}/confirm`), or mark its transfer returned first.",
    ),
    "payout_run_nothing_payable": ProblemKind(
        409,
        "No approved statement due by the payment date can be paid: none is approved, or each is in another "
        "currency than EUR, of zero or a negative total, or of a partner not payable; `not_payable` lists them "
        "with their reasons.",
        "Approve statements, or have the partners give their payee details and accept the self-billing agreement.",
    ),
    "payment_date_in_past": ProblemKind(
        422, "A payout run's payment date has passed.", "Give today's date or a later one as `payment_date`."
    ),
    "payout_debtor_not_configured": ProblemKind(
        409,
        "The account payouts are made from is not configured.",
        "Set PARTNERS_PAYOUT_DEBTOR_NAME, PARTNERS_PAYOUT_DEBTOR_IBAN and PARTNERS_PAYOUT_DEBTOR_BIC.",
    ),
    "payout_run_not_found": ProblemKind(404, "No payout run has this id.", "List the runs: `GET /v1/payout-runs`."),
    "payout_transfer_not_found": ProblemKind(
        404, "The payout run has no transfer with this id.", "Read the run: its `transfer_list` gives the ids."
    ),
    "payout_run_executed": ProblemKind(
        409,
        "The payout run was confirmed executed: its transfers can no longer be marked returned.",
        "A payment returned after the run was confirmed is settled outside the service.",
    ),
    "invoice_not_found": ProblemKind(
        404, "No invoice (of this partner, on a partner's route) has this id.", "List the invoices."
    ),
    "invoice_document_not_ready": ProblemKind(
        409,
        "The invoice's PDF is not rendered yet: a worker renders it shortly after the invoice is issued.",
        "Try again in a moment; the invoice's `document.status` says `rendered` once it can be downloaded, and "
        "`failed` with the error when the last attempt failed (it is tried again).",
    ),
    "invoice_is_credit_note": ProblemKind(
        409, "The invoice is a credit note; a credit note is not itself credited.", "Correct the invoice it credits."
    ),
    "invoice_already_credited": ProblemKind(
        409,
        "A credit note credits this invoice already.",
        "Correct the statement's invoice in force: the partner's invoice list shows it.",
    ),
    "invoice_in_payment": ProblemKind(
        409,
        "A payout run's transfer pays this invoice now.",
        "Mark the transfer returned, or confirm the run executed, before correcting the invoice.",
    ),
    "invoice_correction_not_issuable": ProblemKind(
        409,
        "The statement is paid, so the invoice that replaces the credited one is issued at once, and it cannot be: "
        "the partner has no payee details, or PARTNERS_VAT_RATES has no rate for the vendor's country.",
        "Have the partner give its payee details, or configure the VAT rate, then correct the invoice.",
    ),
    "invoice_correction_changes_total": ProblemKind(
        409,
        "The statement is paid, and its corrected invoice would total another amount than was paid (the "
        "partner's VAT standing changed).",
        "Settle the difference outside the service; the invoice stays as issued.",
    ),
    # --- people: accounts, sessions, mail
    "sign_in_failed": ProblemKind(
        401,
        "The e-mail address or the password is wrong (answered alike whether an account has the address or not).",
        "Check both; forgotten passwords are reset by mail (`POST /v1/password-resets`). Repeated failures are "
        "throttled (429).",
    ),
    "user_deactivated": ProblemKind(403, "The account is deactivated: it cannot sign in.", "Ask an administrator."),
    "second_factor_required": ProblemKind(
        401,
        "The account signs in with a second factor too.",
        "Send `code`: the authenticator app's current six digits, or one of the recovery codes.",
    ),
    "second_factor_wrong": ProblemKind(
        401,
        "The second-factor code is wrong, or was used already (a code counts once).",
        "Wait for the next code of the authenticator app, or use an unused recovery code.",
    ),
    "second_factor_setup_required": ProblemKind(
        403,
        "The vendor requires a second factor of its users, and this one has none yet.",
        "Set it up: `POST /v1/account/second-factor`, then `/confirm` with a first code.",
    ),
    "second_factor_vendor_only": ProblemKind(409, "The second factor is for the vendor's users.", "Nothing to do."),
    "second_factor_on": ProblemKind(
        409, "The second factor is on already.", "Turn it off first (`/v1/account/second-factor/disable`)."
    ),
    "second_factor_not_started": ProblemKind(
        409, "No second-factor setup is under way.", "Start it: `POST /v1/account/second-factor`."
    ),
    "second_factor_required_here": ProblemKind(
        409, "PARTNERS_REQUIRE_SECOND_FACTOR is on: the second factor stays on.", "Nothing to do."
    ),
    "session_invalid": ProblemKind(
        401, "No session has this cookie (or none was sent).", "Sign in: `POST /v1/sessions`."
    ),
    "session_ended": ProblemKind(
        401,
        "The session ended: signed out, signed in again elsewhere with this browser, the password changed, the "
        "user deactivated, or its partner terminated.",
        "Sign in again.",
    ),
    "session_expired": ProblemKind(
        401, "The session was idle too long, or reached its absolute expiry.", "Sign in again."
    ),
    "csrf_failed": ProblemKind(
        403,
        "A request that changes anything, made with a session cookie, lacks the session's CSRF token or sends another.",
        "Send the `csrf_token` of the session (`GET /v1/sessions/current`) as the `X-CSRF-Token` header.",
    ),
    "user_session_required": ProblemKind(
        409, "The route is a signed-in user's own; an admin key has no account.", "Call it with a user's session."
    ),
    "link_not_valid": ProblemKind(
        409,
        "The invitation or password-reset link was used, expired, or a newer one replaced it.",
        "Ask for a new one: an administrator invites again, or `POST /v1/password-resets`.",
    ),
    "password_too_short": ProblemKind(422, "The password has fewer than 12 characters.", "Choose a longer one."),
    "password_too_long": ProblemKind(422, "The password has more than 256 characters.", "Choose a shorter one."),
    "password_too_weak": ProblemKind(
        422,
        "The password is too easy to guess (zxcvbn's estimate: common words, patterns, the user's own name or "
        "address).",
        "Choose a longer phrase of uncommon words; the detail says what made it weak.",
    ),
    "password_wrong": ProblemKind(422, "The current password is wrong.", "Give the password in force."),
    "user_exists": ProblemKind(
        409, "An account has this e-mail address already: one address is one user.", "Invite another address."
    ),
    "user_not_found": ProblemKind(404, "No user you may see has this id.", "List the team's users."),
    "role_not_allowed": ProblemKind(
        403,
        "The caller's role may not do this (the role table: `docs/roles.md`).",
        "Ask a user whose role may, or an administrator.",
    ),
    "role_kind_mismatch": ProblemKind(
        422,
        "The role is not one of the user's kind (a partner's: owner, sales, finance; the vendor's: admin, "
        "partner_manager, finance, viewer).",
        "Give a role of the user's kind.",
    ),
    "own_role": ProblemKind(409, "A user does not change its own role.", "Ask another user who may."),
    "own_account": ProblemKind(409, "A user does not deactivate itself.", "Ask another user who may."),
    "notification_unknown": ProblemKind(
        422,
        "Not a notification one can turn off (invitations and password resets are always sent).",
        "Name notifications from the list in the request's description.",
    ),
    "time_zone_unknown": ProblemKind(
        422, "Not an IANA time zone.", "Give one such as `Europe/Paris` or `America/New_York`."
    ),
    "mail_not_found": ProblemKind(404, "No message of the mail log has this id.", "List the log: `GET /v1/mail`."),
    "mail_not_failed": ProblemKind(
        409, "Only a failed message is sent again; this one is pending, sent or off.", "Nothing to do."
    ),
}


def page(code: str) -> str:
    """The HTML page of one problem code."""
    kind = PROBLEMS[code]
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{code}</title><h1><code>{code}</code></h1>"
        f"<p>HTTP status {kind.status}.</p><h2>What it means</h2><p>{_html(kind.meaning)}</p>"
        f"<h2>What to do</h2><p>{_html(kind.action)}</p>"
        '<p><a href="/problems">Every problem code</a></p></html>'
    )


def index() -> str:
    items = "".join(
        f'<li><a href="/problems/{code}"><code>{code}</code></a> ({k.status})' for code, k in PROBLEMS.items()
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Problem codes</title>"
        f"<h1>Problem codes</h1><ul>{items}</ul></html>"
    )


def _html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)

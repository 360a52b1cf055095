"""The outreach kit's vocabulary (seed 002, sections 5 and 6): the touches a rep logs, the emails of the
sequence, the dispositions that close a lead, and which of them count as accepted."""

#: Touch channels a rep logs, and how they read.
TOUCH_CHANNELS = {"email": "Email", "call": "Call", "linkedin": "LinkedIn"}
#: The sequence's emails, in order.
EMAIL_LABELS = {"email1": "Email 1", "email2": "Email 2", "email3": "Email 3"}
#: "Max 3 touches. If no response after 3 touches over 5 business days, stop."
MAX_TOUCHES = 3
#: Business days between the emails of the kit, and after the last one before a disposition is asked for.
FOLLOW_UP_DAYS = 2

#: The disposition taxonomy, in the seed's order.
DISPOSITION_LABELS = {
    "meeting_set": "Meeting Set",
    "converted_self_serve": "Converted (Self-Serve)",
    "nurture": "Nurture",
    "no_response": "No Response",
    "disqualified": "Disqualified",
    "routed_to_cs": "Routed to CS",
}
#: Accepted leads, for the acceptance rate: Meeting Set + Converted.
ACCEPTED = frozenset({"meeting_set", "converted_self_serve"})

"""Prose mode on developer prompts: recall, precision and false positives per 1,000 lines.

What the LLM gateway scans is what developers write to a model: requests for help that name a
patient or none, pasted code, stack traces, SQL, JSON, chat about colleagues and libraries. This
generator writes such prompts from templates (seeded, synthetic: Faker names from 27 locales, valid
but invented SSNs, MRNs and phone numbers) and labels every value it plants. Half the prompts carry
no PHI at all and are full of capitalised words that are not people (products, places, libraries)
and of developers' names in engineering talk, which are labelled as not PHI: a colleague asked to
review a pull request is not a patient.

Each prompt is scanned twice, as a file (`prose=False`, what the gateway did before prose mode) and
as prose (`prose=True`). A finding is a true positive when it overlaps a planted value; planted
values that no finding overlaps are misses.

Three sets of templates: "tuning" (the prose rules were tuned on it), "held_out" (written after,
not used to tune) and "styles" (values hidden with invisible characters, other scripts' digits or
Unicode spaces, percent-encoded, JSON-escaped or base64-encoded, identifiers after their labels,
e-mail addresses, names as file names and after reminder verbs — and negatives that look like
them). All were written by the author of the rules (not a held-out corpus): read the figures as a
regression check and a floor on false positives, not as field accuracy. A planted value counts as
found when a finding overlaps it (a part of it is enough).

    python -m benchmarks.prose                # the last line is a JSON object of the figures
    python -m benchmarks.prose --count 2000 --seed 7 --show-errors
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from benchmarks.common import emit
from phiwarden.detect import Finding, scan_text

# Locales whose names are written in Latin script (the prose rules read capitalised words).
LOCALES = [
    "en_US", "en_GB", "en_IE", "en_IN", "en_NG", "en_KE", "en_PH", "es_MX", "es_ES", "pt_BR", "fr_FR",
    "de_DE", "it_IT", "nl_NL", "sv_SE", "pl_PL", "cs_CZ", "hu_HU", "ro_RO", "tr_TR", "yo_NG", "ig_NG",
    "zu_ZA", "id_ID", "fi_FI", "ja_JP", "zh_CN",
]  # fmt: skip
AREA_CODES = ["212", "213", "312", "415", "503", "602", "617", "646", "704", "713", "808", "919", "971"]
DATE_FORMATS = ["%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y", "%d %b %Y", "%-m/%-d/%y", "%b %d, %Y"]
PRODUCTS = [
    "Spring Boot", "Visual Studio", "Visual Studio Code", "Claude Code", "Google Cloud Run", "Amazon Aurora",
    "Azure Blob Storage", "Apache Kafka", "React Native", "Docker Desktop", "Android Studio", "Apple Silicon",
    "Microsoft Teams", "Google Sheets", "Oracle Database", "Ruby on Rails", "Jupyter Notebook", "Rocky Linux",
    "Hugging Face", "GitHub Actions", "Epic Hyperspace", "Cerner Millennium", "Mirth Connect", "Power BI",
    "Elastic Beanstalk", "Cloud Functions", "Windows Server", "Red Hat", "Stack Overflow", "Victoria Metrics",
    "Ray Serve", "Grafana Loki", "Hong Kong", "San Francisco", "New York", "Santa Clara", "Kubernetes",
    "Terraform Cloud", "Datadog APM", "Sentry Performance", "Jest", "Playwright Test",
    "Django REST Framework",
]  # fmt: skip
CUES = ["to", "for", "with", "about", "regarding", "from", "on", "into", "in"]


@dataclass
class Prompt:
    text: str
    # (start, end, category) of every planted value, offsets in code points.
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.text.count("\n") + 1


class Values:
    """Invented values for one prompt: a patient, a clinician, developers, dates and identifiers."""

    def __init__(self, rng: random.Random, fakers: dict[str, Faker]) -> None:
        self.rng = rng
        patient = fakers[rng.choice(LOCALES)]
        self.given, self.surname = _person(patient)
        self.given2, self.surname2 = _person(fakers[rng.choice(LOCALES)])
        self.clinician = _person(fakers[rng.choice(LOCALES)])[1]
        self.devs = [_person(fakers[rng.choice(LOCALES)]) for _ in range(2)]
        self.faker = patient

    def planted(self, key: str) -> tuple[str, str] | None:
        """(value, category) of a labelled field, or None for a field that is not PHI."""
        rng = self.rng
        table: dict[str, Callable[[], tuple[str, str]]] = {
            "name": lambda: (f"{self.given} {self.surname}", "name"),
            "name2": lambda: (f"{self.given2} {self.surname2}", "name"),
            "rname": lambda: (f"{self.surname} {self.given}", "name"),
            "given": lambda: (self.given, "name"),
            "surname": lambda: (self.surname, "name"),
            "clinician": lambda: (self.clinician, "name"),
            "file_name": lambda: (f"{_ascii(self.surname)}_{_ascii(self.given)}", "name"),
            "date": lambda: (_date(rng, 2023, 2026), "date"),
            "dob": lambda: (_date(rng, 1935, 2010), "date"),
            "ssn": lambda: (_ssn(rng), "ssn"),
            "ssn_dashes": lambda: (
                _ssn(rng).replace("-", rng.choice("\u2010\u2011\u2013\u2212\uff0d")),
                "ssn",
            ),
            "mrn": lambda: (f"MRN-{rng.randrange(10_000_000, 99_999_999)}", "mrn"),
            "phone": lambda: (_phone(rng), "phone"),
            "email": lambda: (f"{self._mailbox()}{rng.randrange(10, 99)}@gmail.com", "email"),
            # The styles set: hidden, encoded and labelled values (drawn only when a template asks).
            "ssn_hidden": lambda: (_hidden(rng, _ssn(rng)), "ssn"),
            "ssn_script": lambda: (_script_digits(rng, _ssn(rng)), "ssn"),
            "ssn_spaced": lambda: (_ssn(rng).replace("-", rng.choice(UNICODE_SPACES)), "ssn"),
            "ssn_dotted": lambda: (_ssn(rng).replace("-", "."), "ssn"),
            "name_hidden": lambda: (_hidden(rng, f"{self.given} {self.surname}"), "name"),
            "pct_name": lambda: (urllib.parse.quote(f"{self.given} {self.surname}", safe=""), "name"),
            "pct_record": lambda: (urllib.parse.quote(self._record(), safe=""), "encoded"),
            "json_name": lambda: (json.dumps(f"{self.given} {self.surname}")[1:-1], "name"),
            "b64_record": lambda: (base64.b64encode(self._record().encode()).decode(), "encoded"),
            "b64_hl7": lambda: (base64.b64encode(self._hl7().encode()).decode(), "encoded"),
            "member_id": lambda: (
                f"{rng.choice(['XGH', 'W', 'MBR', 'H'])}{rng.randrange(10**8, 10**9)}",
                "health_plan",
            ),
            "dl": lambda: (f"{rng.choice('SDFGK')}{rng.randrange(10**7, 10**8)}", "license"),
            "serial": lambda: (f"SN-{rng.randrange(10_000, 99_999)}-{_letters(rng, 2)}", "device"),
            "mrn_grouped": lambda: (f"{rng.randrange(1000, 9999):04d} {rng.randrange(1000, 9999)}", "mrn"),
        }
        return table[key]() if key in table else None

    def _record(self) -> str:
        return f"Patient: {self.given} {self.surname}, SSN {_ssn(self.rng)}"

    def _hl7(self) -> str:
        rng = self.rng
        dob = f"{rng.randrange(1935, 2010)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        return (
            "MSH|^~\\&|EPIC|HOSP|||202501011200||ADT^A01|1|P|2.5\r"
            f"PID|1||{rng.randrange(10**7, 10**8)}^^^HOSP^MR||{_ascii(self.surname).upper()}^"
            f"{_ascii(self.given).upper()}||{dob}|F|||||||||||{_ssn(rng)}"
        )

    def _mailbox(self) -> str:
        return f"{_ascii(self.given).lower()}.{_ascii(self.surname).lower()}"

    def free(self, key: str) -> str:
        """The text of a field that is not PHI: developers, products, numbers."""
        rng = self.rng
        if key in STYLE_FREE:
            return STYLE_FREE[key](rng)
        (dev_given, dev_surname), (dev2_given, dev2_surname) = self.devs
        table = {
            "dev": f"{dev_given} {dev_surname}",
            "dev2": f"{dev2_given} {dev2_surname}",
            "dev_given": dev_given,
            "product": rng.choice(PRODUCTS),
            "product2": rng.choice(PRODUCTS),
            "cue": rng.choice(CUES),
            "n": str(rng.randrange(2, 60)),
            "port": str(rng.randrange(3000, 9000)),
            "version": f"{rng.randrange(1, 20)}.{rng.randrange(0, 12)}.{rng.randrange(0, 9)}",
            "id": str(rng.randrange(1000, 99999)),
        }
        return table[key]


def _person(faker: Faker) -> tuple[str, str]:
    romanized = getattr(faker, "first_romanized_name", None)
    if romanized is not None:
        return romanized(), faker.last_romanized_name()
    first = faker.first_name_female() if faker.random.random() < 0.5 else faker.first_name_male()
    return first, faker.last_name()


def _ascii(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


UNICODE_SPACES = ["\u2009", "\u2002", "\u2003", "\u3000", "\u2007", "\u202f"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\ufe0f"]
# The zero of each script's decimal digits (and of the fullwidth and mathematical forms).
DIGIT_ZEROS = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0xFF10, 0x1D7CE, 0x1D7F6]
BOT_MAILBOXES = [
    "no-reply@github.com", "noreply@gitlab.com", "ci@{co}.com", "build@{co}.io", "alerts@{co}.com",
    "dependabot[bot]@users.noreply.github.com", "deploy@{co}.dev", "notifications@{co}.com",
]  # fmt: skip
COMPANIES = ["acmehealth", "northwind", "contoso", "initech", "globex", "umbrella"]


def _hidden(rng: random.Random, value: str) -> str:
    """`value` with an invisible character inside one or two of its words or groups."""
    chars = list(value)
    for _ in range(rng.choice((1, 2))):
        inside = [i for i in range(1, len(chars)) if chars[i - 1].isalnum() and chars[i].isalnum()]
        if inside:
            chars.insert(rng.choice(inside), rng.choice(INVISIBLE))
    return "".join(chars)


def _script_digits(rng: random.Random, value: str) -> str:
    zero = rng.choice(DIGIT_ZEROS)
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in value)


def _letters(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(count))


STYLE_FREE: dict[str, Callable[[random.Random], str]] = {
    "sha": lambda rng: "".join(rng.choice("0123456789abcdef") for _ in range(40)),
    "sha256": lambda rng: "".join(rng.choice("0123456789abcdef") for _ in range(64)),
    "b64_binary": lambda rng: base64.b64encode(bytes([0x89, 0x50, 0x4E, 0x47]) + rng.randbytes(60)).decode(),
    "b64_json": lambda rng: (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "iss": "https://auth.example.org",
                    "scope": "read:claims",
                    "exp": rng.randrange(10**9, 2 * 10**9),
                }
            ).encode()
        )
        .decode()
        .rstrip("=")
    ),
    "bot_email": lambda rng: rng.choice(BOT_MAILBOXES).format(co=rng.choice(COMPANIES)),
    "pct_query": lambda rng: urllib.parse.quote(
        rng.choice(PRODUCTS) + " " + rng.choice(["timeout", "setup", "pricing"]), safe=""
    ),
    "json_word": lambda rng: json.dumps(
        rng.choice(["Café Zürich", "München Süd", "São Paulo", "Málaga Centro"])
    )[1:-1],
    "dev_folder": lambda rng: rng.choice(["alice", "bob.k", "dev", "jdoe", "runner"]),
    "semver": lambda rng: f"v{rng.randrange(1, 20)}.{rng.randrange(0, 40)}.{rng.randrange(0, 9)}",
}


def _date(rng: random.Random, low: int, high: int) -> str:
    import datetime as dt

    day = dt.date(low, 1, 1) + dt.timedelta(days=rng.randrange((high - low) * 365))
    return day.strftime(rng.choice(DATE_FORMATS))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(100, 900) if a != 666])
    return f"{area:03d}-{rng.randrange(10, 99):02d}-{rng.randrange(1000, 9999):04d}"


def _phone(rng: random.Random) -> str:
    number = f"{rng.choice(AREA_CODES)}-{rng.randrange(201, 989)}-{rng.randrange(1000, 9999)}"
    return number if number[4:7] != "555" else _phone(rng)


# Prompts that carry PHI: every {field} of Values.planted is labelled.
POSITIVE = [
    "Write a friendly reminder email to {name} about her appointment on {date}.",
    "Can you draft a letter for {name} (DOB {dob}) explaining the new copay rules?",
    "Summarize this note: Pt {name} seen {date} for follow-up of hypertension, BP 142/90, "
    "continue lisinopril.",
    "Dear Dr. {clinician},\n\nI'm following up on the referral for {name}. "
    "Could you send the results?\n\nThanks",
    "Rewrite this so it sounds warmer:\n\nHi {given}, your lab results from {date} are ready in the portal.",
    "The patient, {name}, was admitted {date} with chest pain. Write the discharge summary.",
    "Generate a SQL query that finds all encounters for {name} after {date}.",
    "Why does this fail?\n```\nTraceback (most recent call last):\n"
    '  File "app/notify.py", line {n}, in send\n'
    "    raise ValueError(msg)\nValueError: no phone number on file for patient {name}\n```",
    "Translate to Spanish: Mrs. {surname} should take 20 mg of atorvastatin every night.",
    "{name} called again asking about her refill. Draft a polite reply.",
    "Fix the reminder text for {name}'s visit on {date}; it shows the wrong clinic.",
    "Our nurse says {name}, 72, missed two dialysis sessions. Draft a follow-up message.",
    "Please update the record: {rname}, {mrn}, phone {phone}.",
    "Test case: patient {name} with SSN {ssn} should be rejected by the eligibility check. Write the pytest.",
    "Compose an SMS to {name} confirming tomorrow's appointment at 9am.",
    "Can you help me write a note to {name}'s daughter about the care plan?",
    "Ms. {surname} was discharged on {date}; schedule a follow-up call in two weeks.",
    "Here is what the API returned, why is the name empty in the UI?\n"
    '{{"id": {id}, "patientName": "{name}", "dob": "{dob}"}}',
    "Write an apology to {name} for the billing error on her last statement.",
    "A patient named {name} was seen {date} in the ER. Create a FHIR Patient resource for her.",
    "Remind {name} to bring her insurance card to the visit on {date}.",
    "Help me phrase this: {name} has been diagnosed with type 2 diabetes and needs a diet plan.",
    "What does this log line mean?\n2025-03-14T10:22:01Z INFO notify: reminder queued for {name} <{email}>",
    "Dear {name},\n\nThis is a reminder of your appointment with Dr. {clinician} on {date}.",
    "How should I store the signed consent form for {name} ({mrn}) in S3?",
    "Follow up with {name} regarding the MRI results from {date}.",
    "{rname} - DOS {date} - claim denied, please draft an appeal letter to the payer.",
    "Transfer {name} from ICU to the ward and notify her husband.",
    "Schedule {name} for a colonoscopy next month and send the prep instructions.",
    "The upload of /data/exports/{file_name}_{ssn}.txt failed with EACCES, what permissions do I need?",
    "Patient: {name}, {ssn_dashes}, seen {date}. Write a letter to her insurer.",
    "Ask the front desk to call {name} at {phone} about rescheduling.",
    "Mr. {name} (DOB {dob}) reports dizziness after the new dose; what interactions should I check?",
    "For {name}, the prior auth for Ozempic was denied; draft a letter of medical necessity.",
    "Write a message to {name} about the results of her mammogram from {date}.",
    "I need a regex that masks names like {name} in our logs.",
    "{name} and {name2} both have appointments on {date}; merge the two reminder jobs.",
    "Make this chart note shorter: {name} is a 64-year-old woman with COPD, admitted {date}, "
    "discharged {date}.",
    "Send {name} her vaccination record and remind her the booster is due.",
    "hey, can you check why the SMS to {name} ({phone}) never went out? Twilio says delivered.",
]

# Prompts with no PHI: developers' names, products, places and code. Nothing here is labelled.
NEGATIVE = [
    "Ask {dev} to review the PR before merging to main.",
    "I paired with {dev} on the migration to Spring Boot 3 yesterday.",
    "{dev}'s PR broke the build on CI; can you find why?",
    "Migrate this service from Flask to FastAPI and keep the Celery tasks.",
    "Talk to Kubernetes through the Python client and list pods in the default namespace.",
    "How do I configure Visual Studio Code for Rust Analyzer?",
    "Ask Claude Code to write tests for the Apache Kafka consumer.",
    "As {dev} explained in his talk at PyCon, asyncio tasks need a strong reference.",
    "Our tech lead {dev} wants the Terraform modules split by environment.",
    "Write a Slack message to the team about the outage in US East (N. Virginia).",
    "Compare Amazon Aurora with Google Cloud Spanner for our workload.",
    "Why does Jest hang when I import from React Native Testing Library?",
    "Deploy the Next.js app to Vercel and point the DNS at Cloudflare.",
    "Explain this stack trace:\nTraceback (most recent call last):\n"
    '  File "/usr/lib/python3.11/asyncio/runners.py", line 190, in run\n    return runner.run(main)\n'
    "RuntimeError: Event loop is closed",
    "Why is this slow?\nSELECT p.id, p.created_at FROM patients p JOIN encounters e ON e.patient_id = p.id\n"
    "WHERE e.status = 'Scheduled' ORDER BY e.start_time DESC LIMIT {n};",
    "Refactor the Patient Portal's Appointment Reminder service to use the Outbox pattern.",
    "Thanks to {dev} and {dev2} for the Helm chart fixes, write the release notes for {version}.",
    "Set up GitHub Actions to run Playwright tests on Ubuntu and Windows runners.",
    "{dev} from the platform team says Postgres 16 is ready; plan the upgrade.",
    "Can you summarize Martin Fowler's article on the Strangler Fig pattern?",
    "In the standup, {dev} mentioned the Datadog monitors are noisy; propose thresholds.",
    "Write a Python function that validates the format of a Medicare Beneficiary Identifier.",
    "Add a New Relic span around the Epic FHIR call in get_patient().",
    "Convert this Java class to Kotlin:\n```java\npublic class AppointmentService {{\n"
    "    private final PatientRepository repo;\n"
    "    public Appointment book(Long patientId, LocalDate day) {{\n"
    "        return repo.book(patientId, day);\n    }}\n}}\n```",
    "Our on-call engineer {dev} got paged at 3am; write a postmortem template.",
    "Email {dev} the benchmark results for the Redis cluster.",
    "Hi {dev_given}, can you rebase your branch on main?",
    "Write a commit message for: fix Patient Search pagination when Last Name is empty.",
    "What's the difference between Apache Spark and Apache Flink for streaming HL7 feeds?",
    'Review this Terraform:\nresource "aws_db_instance" "ehr" {{\n  engine = "postgres"\n  port = {port}\n}}',
    "The Grafana dashboard from {dev} shows p99 latency spikes every Monday at 9.",
    "Use the Builder pattern like Joshua Bloch describes in Effective Java.",
    "Write docs for the Claims Adjudication Engine and the Prior Authorization API.",
    "Open a Jira ticket for {dev} to fix the flaky Cypress test in Checkout Flow.",
    "Schedule a meeting with {dev} and {dev2} to discuss the Snowflake migration.",
    "Generate 10 fake patients with Faker for the staging database.",
    "We are moving from New York to San Francisco data centers next quarter.",
    "Write a README section about Continuous Integration with Travis CI and Circle CI.",
    "Is Grace Hopper's remark about asking forgiveness relevant to our change process?",
    "Rename the class PatientIntakeForm to IntakeForm and update the imports in React Router.",
    "How do I connect {cue} {product} from a Python script?",
    "Is there a good way to migrate {cue} {product} without downtime?",
    "We switched {cue} {product} last sprint and now {product2} times out.",
    "Can you write a farewell message for {dev} who is leaving the team after five years?",
    "Who maintains the Apache Commons Lang library these days?",
    "Dear Hiring Manager, please find my resume attached. Rewrite this cover letter.",
    "Hello World in Rust, Go and Zig please.",
    "Summarize the GDPR and HIPAA differences for our Privacy Officer.",
    "{dev} said the Mirth Connect channel drops ADT messages on Sunday nights.",
    "Add type hints to this:\n```python\ndef schedule(patient_id, day, provider=None):\n"
    "    return Appointment.objects.create(patient_id=patient_id, day=day, provider=provider)\n```",
]


# A second set, written after the prose rules were tuned on the two above and not used to tune them:
# other phrasings, longer prompts, tickets, chat, comments and code. Its figures are the honest ones.
HELD_OUT_POSITIVE = [
    "JIRA-{id}: Reminder SMS for {name} went out twice. She got one at 7am and one at 7:05. Investigate.",
    "Can you turn this into a bulleted handoff?\n{name} bed 4, post-op day 2, pain controlled, "
    "ambulating, plan discharge {date}.",
    "my mom's neighbour {name} keeps getting the wrong bill from the clinic, how do I word a complaint",
    "Write a Jest test: renders the header 'Welcome back, {given}' when the logged-in patient is {name}.",
    "We got a complaint from {name} ({email}) that the portal shows someone else's results. Draft a reply.",
    "{name}\n{dob}\n{phone}\nThose are the fields from the intake form; write a validation schema.",
    "Please proofread: 'On {date}, {name} presented to the ED with shortness of breath.'",
    "The insurer rejected the claim for {rname}; the member ID is on file. What codes should we resubmit?",
    "re: {name} - she wants her records sent to her new doctor in Ohio. what form do we need?",
    'Can you make the tone gentler? "Dear {name}, you have missed 3 appointments and may be discharged '
    'from the practice."',
    "Convert to a FHIR Appointment: {name}, cardiology, {date} 10:30, Dr. {clinician}.",
    "```\n{{'first': '{given}', 'last': '{surname}', 'dob': '{dob}', 'ssn': '{ssn}'}}\n```\n"
    "why does pydantic reject this?",
    "Hi! I'm writing to {name}'s care team about her medication schedule, can you help me draft it?",
    "Draft a text to {given} {surname} letting her know the pharmacy has her refill ready.",
    "Make a table of these visits: {name} {date}; {name2} {date}.",
    "Explain in plain words for {name}: her A1C went from 8.1 to 7.2 since {date}.",
    "She's {name}, 58, came in with a rash after starting amoxicillin. What else should I ask?",
    "Unit test failing: expected 'Mr. {surname}' but got 'Mr. {surname} ' (trailing space).",
    "Please anonymize this before I paste it in the ticket: {name} called on {date} about her prescription.",
    "Our outreach list has {name}, {name2} and others overdue for a flu shot; write the outreach email.",
]
HELD_OUT_NEGATIVE = [
    "{dev} left a comment on the RFC saying we should use event sourcing, do you agree?",
    "Help me write a LinkedIn recommendation for {dev}, we worked together on the data platform.",
    "Why does `npm run build` fail with 'Cannot find module Webpack CLI' on Node 20?",
    "Summarize the thread: {dev} thinks Postgres logical replication is enough, {dev2} wants Debezium.",
    "Write a haiku about Kubernetes Operators and Helm Charts.",
    "Draft an intro email connecting {dev} (our SRE lead) with the Datadog solutions engineer.",
    "{dev} will be out next week; who should own the Terraform review in the meantime?",
    "Explain the difference between Azure Active Directory and Microsoft Entra ID.",
    "What did Linus Torvalds mean by 'talk is cheap, show me the code'?",
    "Rewrite this docstring: 'Returns the Patient Summary for the Care Team Dashboard view.'",
    "Can you review this SQL?\nINSERT INTO audit_log (actor, action) VALUES ('system', 'Nightly Export');",
    "Plan a workshop agenda for New Hire Onboarding: Git Basics, Code Review, On-Call Rotation.",
    "Is Apple Health Kit or Google Fit better for syncing step counts into our app?",
    "Prepare talking points for my 1:1 with {dev} about her promotion case.",
    "Who wrote the Effective Python book, Brett Slatkin?",
    "Make the error message friendlier: 'Patient Not Found' -> something for the Front Desk UI.",
    "Translate the README from German: 'Bitte wende dich an Jonas Becker bei Fragen zum Build.'",
    "{dev} and I disagree on tabs vs spaces, settle it.",
    "Write a retro summary: What Went Well, What Didn't, Action Items for Sprint {n}.",
    "Cite the paper by Vaswani et al., Attention Is All You Need, in APA format.",
    "Our designer {dev} wants Inter instead of Roboto for the Patient Portal; update the Tailwind config.",
    "Compare Amazon Comprehend Medical and Google Healthcare Natural Language API for entity extraction.",
    "Debug this: TypeError: Cannot read properties of undefined (reading 'lastName') at PatientCard.tsx:{n}",
    "Write a welcome message for {dev}, who joins the Mobile Team on Monday.",
    "Set up a cron in GitHub Actions that runs every Monday at 9 in Europe/Berlin time.",
    "Thanks {dev_given}! Can you also bump the version to {version} in pyproject?",
    "{dev} says the HL7 ADT^A08 messages from Cerner have an empty PID-5; is that allowed?",
    "Generate sample data: 5 fake doctors with NPI numbers for the Provider Directory demo.",
    "Rename Dr. Strange Love feature flag to something less silly.",
    "Summarize what Grace Hopper and Margaret Hamilton contributed to software engineering.",
]


# A third set, for the styles of the gateway's second review: values hidden with invisible characters,
# other scripts' digits and Unicode spaces, percent-encoded, JSON-escaped and base64-encoded values,
# identifiers after their labels, e-mail addresses, names as file names and after reminder verbs;
# and prompts without PHI that look like them (robots' mailboxes, versions, hashes, base64 of binary
# and of JSON, encoded URLs, capitalised non-person words, labels without values). A planted value
# that holds several (an encoded record) is counted as "encoded".
STYLE_POSITIVE = [
    "Why does the eligibility check reject this? SSN: {ssn_hidden}",
    "The intake form stored SSN {ssn_script} for the patient; is the validator wrong?",
    "Patient SSN: {ssn_spaced} came from a PDF export, normalize it.",
    "Patient SSN: {ssn_dotted}, please fix the formatting in the letter.",
    "Send a reminder to {name_hidden} about the follow-up visit.",
    "why does curl 'https://ehr.example.org/api/patients?name={pct_name}&active=true' return 404?",
    "The portal logged GET /search?q={pct_record} with a 500, why?",
    'The export job wrote {{"patient_name": "{json_name}", "status": "active"}}; parse it in Go.',
    "Decode this and tell me what's wrong: {b64_record}",
    "This HL7 came base64-encoded in the queue: {b64_hl7} -- which segment is malformed?",
    "send the results to {email} before Friday",
    "Member ID: {member_id}, the claim was denied, draft an appeal.",
    "Subscriber ID {member_id} (Aetna) fails the 270 eligibility check.",
    "Driver's license {dl} (MA) was scanned at intake; redact it in the PDF.",
    "device serial {serial} on her pacemaker keeps failing the remote check",
    "MRN {mrn_grouped} has two charts; merge them.",
    "Read /data/notes/{name}.txt and summarize the visit.",
    "Can you write a text message reminding {name} about Tuesday?",
    "We keep calling {name} but the number bounces.",
]
STYLE_NEGATIVE = [
    "Bump {product} to {semver} and update the lockfile (commit {sha}).",
    "The CI mails from {bot_email} land in spam; fix the SPF record.",
    "Is this a valid PNG? data:image/png;base64,{b64_binary}",
    "Why does curl 'https://search.example.org/?q={pct_query}&page=2' return 400?",
    'The API returns {{"city": "{json_word}"}}; why is the accent escaped?',
    "Open /Users/{dev_folder}/Library/Application Support/Code/User/settings.json and add Rust Analyzer.",
    "Compare /docs/Release Notes.md with /docs/Project Roadmap.md and list the differences.",
    "Set the Subscriber ID column width to 12 in the Member Search grid.",
    "The serial port /dev/ttyUSB0 on the build server drops bytes at 115200 baud.",
    "Verify the sha256 {sha256} of the {product} installer.",
    "The JWT payload is {b64_json} and it lacks the aud claim.",
    "Translate 'Schedule the Sprint Review with the Platform Team' into German.",
    "Email {bot_email} about the flaky Selenium Grid nodes on {product}.",
    "Remind the Platform Team about the Code Freeze on Friday.",
]


def render(template: str, values: Values) -> Prompt:
    text: list[str] = []
    spans: list[tuple[int, int, str]] = []
    position = 0
    fixed: dict[str, tuple[str, str | None]] = {}
    for literal, key, _, _ in string.Formatter().parse(template):
        text.append(literal)
        position += len(literal)
        if key is None:
            continue
        if key not in fixed:
            planted = values.planted(key)
            fixed[key] = (planted[0], planted[1]) if planted else (values.free(key), None)
        value, category = fixed[key]
        if category is not None:
            spans.append((position, position + len(value), category))
        text.append(value)
        position += len(value)
    return Prompt("".join(text), spans)


SETS = {
    "tuning": (POSITIVE, NEGATIVE),
    "held_out": (HELD_OUT_POSITIVE, HELD_OUT_NEGATIVE),
    "styles": (STYLE_POSITIVE, STYLE_NEGATIVE),
}


def prompts(count: int, seed: int, *, templates: str = "tuning") -> list[Prompt]:
    positive, negative = SETS[templates]
    rng = random.Random(seed)
    fakers = {}
    for index, locale in enumerate(LOCALES):
        faker = Faker(locale)
        faker.seed_instance(seed * 1000 + index)
        fakers[locale] = faker
    out = []
    for index in range(count):
        out.append(render(rng.choice(positive if index % 2 == 0 else negative), Values(rng, fakers)))
    return out


def score(items: list[Prompt], *, prose: bool, show: bool) -> dict[str, Any]:
    planted = found = true_found = false_found = 0
    missed: Counter[str] = Counter()
    by_category: dict[str, list[int]] = {}
    lines = sum(p.lines for p in items)
    scans, seconds = _timed_scans(items, prose=prose)
    for prompt, scanned in zip(items, scans, strict=True):
        findings = [f for f in scanned if f.category != "secret"]
        for start, end, category in prompt.spans:
            planted += 1
            hit = any(f.start < end and start < f.end for f in findings)
            tally = by_category.setdefault(category, [0, 0])
            tally[0] += 1
            tally[1] += hit
            if not hit:
                missed[category] += 1
                if show:
                    print(f"  MISS {category}: {prompt.text[start:end]!r} in {prompt.text[:120]!r}")
        for f in findings:
            found += 1
            if any(f.start < end and start < f.end for start, end, _ in prompt.spans):
                true_found += 1
            else:
                false_found += 1
                if show:
                    value = prompt.text[f.start : f.end]
                    print(f"  FP {f.category} {f.rule}: {value!r} in {prompt.text[:120]!r}")
    hits = sum(t[1] for t in by_category.values())
    megabytes = sum(len(p.text.encode()) for p in items) / 1e6
    return {
        "us_per_prompt": round(seconds / len(items) * 1e6, 1),
        "mb_s": round(megabytes / seconds, 2),
        "planted": planted,
        "recall": round(hits / planted, 3) if planted else 1.0,
        "precision": round(true_found / found, 3) if found else 1.0,
        "false_positives": false_found,
        "fp_per_1k_lines": round(false_found * 1000 / lines, 2),
        "recall_by_category": {c: round(t[1] / t[0], 3) for c, t in sorted(by_category.items())},
        "missed": dict(missed),
    }


def _timed_scans(items: list[Prompt], *, prose: bool) -> tuple[list[list[Finding]], float]:
    """Every prompt's findings, and the seconds of the fastest of three passes over all of them."""
    best = float("inf")
    scans: list[list[Finding]] = []
    for _ in range(3):
        started = time.perf_counter()
        scans = [scan_text(p.text, prose=prose) for p in items]
        best = min(best, time.perf_counter() - started)
    return scans, best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="prompts to generate (half carry PHI)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--show-errors", action="store_true", help="print every miss and false positive")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for name in SETS:
        items = prompts(args.count, args.seed, templates=name)
        part: dict[str, Any] = {
            "prompts": len(items),
            "lines": sum(p.lines for p in items),
            "with_phi": sum(1 for p in items if p.spans),
        }
        for prose in (False, True):
            if args.show_errors:
                print(f"--- {name} set, prose={prose}")
            part["prose" if prose else "file_mode"] = score(items, prose=prose, show=args.show_errors)
        figures[name] = part
    emit(figures)


if __name__ == "__main__":
    main()

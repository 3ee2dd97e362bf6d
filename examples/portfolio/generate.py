#!/usr/bin/env python3
"""Writes the example portfolio of a French SME: customers.csv, invoices.csv, payments.csv.

Deterministic (fixed seed, Python standard library only): run `python3 generate.py` in this
folder and the three CSV files come out byte-identical. The example plans are run as of
2026-03-16, 2026-04-15 and 2026-06-15; customers C001-C024 are hand-made cases (see README.md),
C025 onwards are ordinary customers with random but plausible invoices and payments.
"""
import csv
import datetime as dt
import random

SEED = 20260316
A, B, C = dt.date(2026, 3, 16), dt.date(2026, 4, 15), dt.date(2026, 6, 15)
day = dt.timedelta(days=1)
rng = random.Random(SEED)

customers = []  # dicts
invoices = []
payments = []

REGIONS = ["Auvergne-Rhône-Alpes", "Île-de-France", "Occitanie", "Nouvelle-Aquitaine", "Hauts-de-France",
           "Grand Est", "Bretagne", "Provence-Alpes-Côte d'Azur", "Pays de la Loire", "Normandie"]


def slug(name):
    keep = "".join(c.lower() if c.isalnum() else "-" for c in name)
    for a, b in [("é", "e"), ("è", "e"), ("ê", "e"), ("ô", "o"), ("î", "i"), ("ç", "c"), ("â", "a"), ("û", "u")]:
        keep = keep.replace(a, b)
    return "-".join(p for p in keep.split("-") if p and p not in ("sarl", "sas", "sa", "eurl", "sasu", "ltd", "de", "du", "des", "la", "le", "les"))[:30]


def customer(cid, name, segment, region, tags="", language="fr", avg=None, email=True):
    s = slug(name)
    customers.append({
        "id": cid, "name": name, "segment": segment,
        "email": f"comptabilite@{s}.fr" if email and language == "fr" else (f"accounts@{s}.co.uk" if email else ""),
        "phone": f"0{rng.randint(1, 5)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}" if language == "fr" else f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        "language": language, "tags": tags, "avg_days_late": "" if avg is None else avg, "region": region,
    })


counter = [0]


def invoice(cust, issue, due, amount, currency="EUR", terms="30 days net", outstanding="", disputed=False,
            promise_date=None, promise_amount="", plan=False, po=None, blank_due=False):
    counter[0] += 1
    iid = f"FA-{issue.year % 100:02d}{issue.month:02d}-{counter[0]:04d}"
    invoices.append({
        "id": iid, "customer_id": cust, "issue_date": issue.isoformat(),
        "due_date": "" if blank_due else due.isoformat(), "amount": f"{amount:.2f}", "currency": currency,
        "outstanding": outstanding if outstanding == "" else f"{outstanding:.2f}",
        "disputed": "yes" if disputed else "", "promise_date": promise_date.isoformat() if promise_date else "",
        "promise_amount": promise_amount if promise_amount == "" else f"{promise_amount:.2f}",
        "terms": terms, "payment_plan": "yes" if plan else "", "po_number": po or "",
    })
    return iid


def pay(iid, date, amount, kind="payment"):
    payments.append({"id": f"RG-{len(payments) + 1:05d}", "invoice_id": iid, "date": date.isoformat(),
                     "amount": f"{amount:.2f}", "kind": kind})


def po():
    return f"BC-{rng.randint(2025, 2026)}-{rng.randint(1000, 9999)}"


def late(asof, days, terms_days=30):
    """(issue, due) for an invoice `days` late on `asof` (negative: due in -days days)."""
    due = asof - dt.timedelta(days=days)
    return due - dt.timedelta(days=terms_days), due


# ---- hand-made cases: C001-C024 -------------------------------------------------------------
# Pre-due reminders: due 10 days after each as-of date.
customer("C001", "Groupe Vernier Industrie SA", "key-account", "Auvergne-Rhône-Alpes", avg="4.5")
for asof, amt in [(A, 18450.00), (B, 22980.40), (C, 15600.00)]:
    i, d = late(asof, -10, 45)
    invoice("C001", i, d, amt, terms="45 days net", po=po())
customer("C002", "Menuiserie Dubois SARL", "sme", "Bretagne")
for asof, amt in [(A, 2340.00), (B, 1875.60), (C, 3120.00)]:
    i, d = late(asof, -10)
    invoice("C002", i, d, amt)

# Due today on each as-of date (not late: days_late = 0).
customer("C003", "Transports Girard SAS", "sme", "Hauts-de-France", avg="12")
for asof, amt in [(A, 4210.80), (B, 3990.00), (C, 5120.00)]:
    i, d = late(asof, 0)
    invoice("C003", i, d, amt)

# 3, 10, 15, 20, 30, 45, 60 and 90 days late on 2026-03-16, one customer per segment family.
customer("C004", "Boulangerie Petit", "micro", "Normandie", avg="18")
for days, amt in [(3, 86.40), (10, 142.00), (15, 238.50)]:
    i, d = late(A, days)
    invoice("C004", i, d, amt)
customer("C005", "Garage Moreau SARL", "sme", "Occitanie", avg="25")
for days, amt in [(20, 1480.00), (30, 2265.90), (45, 960.00)]:
    i, d = late(A, days)
    invoice("C005", i, d, amt)
customer("C006", "Imprimerie Roux SAS", "sme", "Grand Est", avg="41")
for days, amt in [(60, 3840.00), (90, 1270.20)]:
    i, d = late(A, days)
    invoice("C006", i, d, amt)
customer("C007", "Distribution Rhône-Alpes SAS", "key-account", "Auvergne-Rhône-Alpes", avg="9")
for days, amt in [(3, 12800.00), (10, 9450.00), (20, 31200.00), (45, 58900.00)]:
    i, d = late(A, days, 45)
    invoice("C007", i, d, amt, terms="45 days net", po=po())
customer("C008", "Mairie de Villeurbanne", "public", "Auvergne-Rhône-Alpes", avg="38")
for days, amt in [(1, 6400.00), (30, 14250.00), (60, 8730.00)]:
    i, d = late(A, days)
    invoice("C008", i, d, amt, po=po())

# Imported already very late (catch-up): due in October 2025, never reminded.
customer("C009", "Cabinet Lefèvre & Associés", "sme", "Île-de-France")
invoice("C009", dt.date(2025, 9, 12), dt.date(2025, 10, 12), 5600.00)
invoice("C009", dt.date(2025, 9, 30), dt.date(2025, 10, 30), 1890.00)

# Partial payments with dates (one before 2026-03-16, one between the first two runs).
customer("C010", "Plomberie Fournier EURL", "micro", "Pays de la Loire")
iid = invoice("C010", dt.date(2026, 1, 5), dt.date(2026, 2, 4), 4800.00)
pay(iid, dt.date(2026, 2, 20), 1500.00)
pay(iid, dt.date(2026, 3, 30), 1000.00)

# Credit notes.
customer("C011", "Électricité Bernard SARL", "sme", "Nouvelle-Aquitaine")
iid = invoice("C011", dt.date(2026, 1, 10), dt.date(2026, 2, 9), 2400.00)
pay(iid, dt.date(2026, 2, 12), 400.00, "credit_note")
iid = invoice("C011", dt.date(2026, 2, 2), dt.date(2026, 3, 4), 980.00)
pay(iid, dt.date(2026, 3, 20), 980.00, "credit_note")  # fully cancelled by a credit note

# Paid in full after being late (feeds `after payment`).
customer("C012", "Pharmacie du Centre", "micro", "Provence-Alpes-Côte d'Azur", avg="22")
iid = invoice("C012", dt.date(2026, 1, 14), dt.date(2026, 2, 13), 615.30)
pay(iid, dt.date(2026, 3, 25), 615.30)  # 30 days late on 2026-03-16, paid before 2026-04-15
iid = invoice("C012", dt.date(2026, 3, 10), dt.date(2026, 4, 9), 420.00)
pay(iid, dt.date(2026, 5, 20), 420.00)  # 6 days late on 2026-04-15, paid before 2026-06-15

# Disputed invoices.
customer("C013", "Société Lyonnaise de BTP SA", "key-account", "Auvergne-Rhône-Alpes")
i, d = late(A, 40, 45)
invoice("C013", i, d, 27450.00, terms="45 days net", disputed=True, po=po())
i, d = late(A, 25, 45)
invoice("C013", i, d, 8120.00, terms="45 days net", po=po())

# Promises to pay: kept, broken before 2026-04-15, still pending on 2026-04-15.
customer("C014", "Restaurant Le Vieux Port SARL", "micro", "Provence-Alpes-Côte d'Azur")
iid = invoice("C014", dt.date(2026, 1, 21), dt.date(2026, 2, 20), 1320.00,
              promise_date=dt.date(2026, 3, 31), promise_amount=1320.00)
pay(iid, dt.date(2026, 3, 28), 1320.00)  # kept
customer("C015", "Boucherie Lambert", "micro", "Grand Est")
invoice("C015", dt.date(2026, 1, 26), dt.date(2026, 2, 25), 865.00,
        promise_date=dt.date(2026, 4, 5), promise_amount=865.00)  # broken: nothing paid
customer("C016", "Atelier Mercier SAS", "sme", "Bretagne")
iid = invoice("C016", dt.date(2026, 2, 3), dt.date(2026, 3, 5), 3600.00,
              promise_date=dt.date(2026, 4, 30), promise_amount=1800.00)  # pending on 2026-04-15
pay(iid, dt.date(2026, 4, 28), 1800.00)  # part of it kept before the date

# Legal hold.
customer("C017", "Hôtel des Alpes SARL", "sme", "Auvergne-Rhône-Alpes", tags="legal-hold")
for days, amt in [(50, 7340.00), (75, 2890.00)]:
    i, d = late(A, days)
    invoice("C017", i, d, amt)

# Total balance below 15 EUR (one through payments, one through the outstanding column).
customer("C018", "Fleuriste Rose & Lys", "micro", "Normandie")
iid = invoice("C018", dt.date(2026, 1, 8), dt.date(2026, 2, 7), 120.00)
pay(iid, dt.date(2026, 2, 28), 110.00)
customer("C019", "Cordonnerie Martin", "micro", "Occitanie")
invoice("C019", dt.date(2026, 1, 12), dt.date(2026, 2, 11), 95.00, outstanding=12.40)

# Payment plan: 12 000 EUR in six monthly payments of 2 000.
customer("C020", "Centre hospitalier de Valence", "public", "Auvergne-Rhône-Alpes", avg="52")
iid = invoice("C020", dt.date(2025, 11, 14), dt.date(2025, 12, 14), 12000.00, plan=True, po=po())
for m in range(1, 7):
    pay(iid, dt.date(2026, m, 10), 2000.00)

# Export customer billed in GBP.
customer("C021", "Thames Valley Foods Ltd", "export", "Royaume-Uni", language="en", tags="export")
for issue, amt in [(dt.date(2025, 12, 1), 4250.00), (dt.date(2026, 1, 15), 2980.50), (dt.date(2026, 2, 10), 6120.00),
                   (dt.date(2026, 3, 20), 1875.00), (dt.date(2026, 5, 5), 3340.00)]:
    iid = invoice("C021", issue, issue + 60 * day, amt, currency="GBP", terms="60 days", po=f"PO-TVF-{issue:%y%m}")
    if issue.month == 12:
        pay(iid, dt.date(2026, 2, 12), amt)

# Segment `other`: an association and a foundation.
customer("C022", "Association Les Amis du Vélo", "other", "Bretagne", email=False)
i, d = late(A, 12)
invoice("C022", i, d, 180.00)
customer("C023", "Fondation Hugo pour la lecture", "other", "Île-de-France")
i, d = late(B, 20)
invoice("C023", i, d, 1450.00)

# No open invoice: everything paid on time.
customer("C024", "Cave Duval & Fils", "sme", "Nouvelle-Aquitaine")
for issue, amt in [(dt.date(2025, 11, 3), 2150.00), (dt.date(2026, 1, 6), 1760.40)]:
    iid = invoice("C024", issue, issue + 30 * day, amt)
    pay(iid, issue + 27 * day, amt)

# Due date computed from terms (the export leaves it empty).
for issue, amt in [(dt.date(2026, 2, 27), 1630.00), (dt.date(2026, 3, 27), 2075.00)]:
    invoice("C002", issue, issue + 30 * day, amt, blank_due=True)

# ---- ordinary customers: C025 onwards -------------------------------------------------------
FIRST = ["Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Leroy", "Moreau", "Simon",
         "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
         "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand", "Garnier"]
TRADES = [("Boulangerie", "micro"), ("Garage", "sme"), ("Menuiserie", "sme"), ("Maçonnerie", "sme"),
          ("Transports", "sme"), ("Imprimerie", "sme"), ("Coiffure", "micro"), ("Boucherie", "micro"),
          ("Pharmacie", "micro"), ("Cabinet d'architectes", "sme"), ("Charpente", "sme"), ("Traiteur", "micro"),
          ("Électricité", "sme"), ("Plâtrerie", "micro"), ("Paysagiste", "micro"), ("Informatique", "sme")]
FORMS = {"micro": ["", "EURL", "SARL", "SASU"], "sme": ["SARL", "SAS", "SA"]}
KEY = ["Groupe Chevalier Distribution SA", "Alpes Logistique SAS", "Méditerranée Agroalimentaire SA",
       "Société Nantaise d'Emballage SAS", "Industries Bouvier SA", "Compagnie Fruitière du Sud SAS"]
PUBLIC = ["Mairie de Bron", "Mairie d'Annecy", "Centre hospitalier de Vienne", "CHU de Saint-Étienne",
          "Communauté de communes du Pays de Gex", "Département de l'Isère", "CCAS de Vénissieux",
          "Lycée Jean Moulin", "Syndicat des eaux du Forez", "Mairie de Chambéry"]
RANGES = {"micro": (80, 2500), "sme": (300, 9000), "key-account": (4000, 60000), "public": (800, 30000),
          "export": (1000, 12000), "other": (80, 2000)}

plain = []
for name in KEY:
    plain.append((name, "key-account"))
for name in PUBLIC:
    plain.append((name, "public"))
used = set()
while len(plain) < 42:
    trade, seg = rng.choice(TRADES)
    family = rng.choice(FIRST)
    form = rng.choice(FORMS[seg])
    name = f"{trade} {family}" + (f" {form}" if form else "")
    if name not in used:
        used.add(name)
        plain.append((name, seg))
plain.append(("Bavaria Maschinenbau GmbH", "export"))
plain.append(("Comité des fêtes de Cluny", "other"))

start, end = dt.date(2025, 9, 1), dt.date(2026, 6, 10)
span = (end - start).days
for n, (name, seg) in enumerate(plain, start=25):
    cid = f"C{n:03d}"
    lang = "en" if seg == "export" else "fr"
    avg = f"{rng.randint(0, 45)}" if rng.random() < 0.5 else None
    tags = rng.choice(["", "", "", "", "vip", "new"]) if seg != "public" else "public-sector"
    customer(cid, name, seg, "Bavière" if seg == "export" else rng.choice(REGIONS), tags=tags, language=lang, avg=avg)
    lo, hi = RANGES[seg]
    for _ in range(rng.randint(4, 9)):
        issue = start + dt.timedelta(days=rng.randrange(span))
        terms_days = {"public": 30, "key-account": 45, "export": 60}.get(seg, rng.choice([30, 30, 45]))
        due = issue + dt.timedelta(days=terms_days)
        amount = round(rng.uniform(lo, min(hi, lo * 8 if seg == "micro" else hi)), 2)
        iid = invoice(cid, issue, due, amount, terms=f"{terms_days} days net" if terms_days != 60 else "60 days",
                      po=po() if seg in ("key-account", "public") else None,
                      disputed=rng.random() < 0.03)
        # Payment behaviour: most invoices are paid, some late, some in part.
        r = rng.random()
        paid_on = due + dt.timedelta(days=rng.randint(-10, 50))
        if paid_on > C or paid_on < issue:
            continue
        if r < 0.55:
            pay(iid, paid_on, amount)
        elif r < 0.70:
            part = round(amount * rng.choice([0.3, 0.5, 0.6]), 2)
            pay(iid, paid_on, part)

FIELDS_C = ["id", "name", "segment", "email", "phone", "language", "tags", "avg_days_late", "region"]
FIELDS_I = ["id", "customer_id", "issue_date", "due_date", "amount", "currency", "outstanding", "disputed",
            "promise_date", "promise_amount", "terms", "payment_plan", "po_number"]
FIELDS_P = ["id", "invoice_id", "date", "amount", "kind"]
for name, fields, rows in [("customers.csv", FIELDS_C, customers), ("invoices.csv", FIELDS_I, invoices),
                           ("payments.csv", FIELDS_P, payments)]:
    with open(name, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
print(f"{len(customers)} customers, {len(invoices)} invoices, {len(payments)} payments")

"""Word lists and surface-form helpers for the seed generator (sandbox/seed.py).

Everything here is plain data or a pure function of an explicit `random.Random`, so the seed
stays deterministic. Company names are built from words that contain no legal suffix token
(inc, co, ag, sa, …) and whose accents all decompose under NFKD, so the normalized name of a
company is known here without relying on the matching code under test.
"""

from __future__ import annotations

import random
import unicodedata

PREFIXES = (
    "Blue", "North", "Apex", "Silver", "Red", "Bright", "Iron", "Clear", "Summit", "Nova",
    "Granite", "Cedar", "Maple", "Atlas", "Orbit", "Vertex", "Quantum", "Pioneer", "Golden",
    "Crystal", "Harbor", "Eagle", "Falcon", "Lunar", "Solar", "Polar", "Coastal", "Prairie",
    "Evergreen", "Frontier", "Liberty", "Keystone", "Meridian", "Zenith", "Horizon", "Beacon",
    "Cobalt", "Crimson", "Emerald", "Onyx", "Sapphire", "Indigo", "Amber", "Scarlet", "Violet",
    "Copper", "Steel", "Oak", "Willow", "Aspen", "Birch", "Juniper", "Sequoia", "Redwood",
    "Everest", "Alpine", "Glacier", "Tundra", "Canyon", "Mesa", "Delta", "Sigma", "Omega",
    "Alpha", "Gamma", "Kappa", "Lambda", "Titan", "Vector", "Pixel", "Signal", "Rapid", "Swift",
    "Bold", "True", "Prime", "Noble", "Royal", "Grand", "Great", "Little", "Open", "Smart",
    "Wise", "Agile", "Lucid", "Vivid", "Stellar", "Cosmic", "Astral", "Urban", "Metro",
    "Rural", "Western", "Eastern", "Southern", "Pacific", "Atlantic", "Arctic", "Tropic",
    "Highland", "Lowland", "Riverside", "Lakeside", "Hilltop", "Stonebridge", "Fairview",
    "Greenfield", "Westbrook", "Ashford", "Kingston", "Brighton", "Carlton", "Dalton",
    "Everton", "Foxglove", "Hawthorn", "Ivory", "Jade", "Kestrel", "Lynx", "Mosaic", "Nimbus",
)
CORES = (
    "Harbor", "Ridge", "Peak", "Stone", "Field", "River", "Wave", "Pine", "Forge", "Works",
    "Point", "Gate", "Bridge", "Path", "Trail", "Crest", "Grove", "Haven", "Hollow", "Meadow",
    "Spring", "Brook", "Creek", "Falls", "Island", "Bay", "Cove", "Shore", "Cliff", "Valley",
    "Mountain", "Summit", "Tower", "Castle", "Harvest", "Orchard", "Garden", "Lantern", "Compass",
    "Anchor", "Arrow", "Shield", "Spark", "Flame", "Ember", "Frost", "Storm", "Thunder",
    "Cloud", "Sky", "Star", "Moon", "Sun", "Dawn", "Dusk", "Light", "Shadow", "Echo", "Pulse",
    "Flow", "Stream", "Current", "Tide", "Wind", "Leaf", "Root", "Seed", "Bloom", "Petal",
    "Wing", "Feather", "Nest", "Hive", "Den", "Lodge", "Cabin", "Mill", "Yard", "Dock",
    "Port", "Quay", "Wharf", "Market", "Square", "Circle", "Line", "Grid", "Block", "Cube",
    "Sphere", "Prism", "Lens", "Mirror", "Beam", "Bolt", "Gear", "Lever", "Wheel", "Engine",
)
INDUSTRIES = (
    "Analytics", "Logistics", "Systems", "Software", "Labs", "Health", "Energy", "Foods",
    "Robotics", "Media", "Capital", "Consulting", "Networks", "Security", "Solutions",
    "Dynamics", "Technologies", "Group", "Holdings", "Industries", "Manufacturing", "Pharma",
    "Biotech", "Insurance", "Payments", "Finance", "Retail", "Apparel", "Motors", "Aerospace",
    "Marine", "Mining", "Construction", "Engineering", "Architects", "Design", "Studios",
    "Games", "Learning", "Education", "Hospitality", "Travel", "Realty", "Properties",
    "Telecom", "Wireless", "Semiconductors", "Devices", "Instruments", "Chemicals", "Textiles",
)
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell",
    "Rose", "Davis", "Rodriguez", "Cox", "Alexander", "Garcia", "Martin", "Moore", "Lee",
    "Nguyen", "Kim", "Schmidt", "Fischer", "Weber", "Becker", "Wagner", "Hoffmann", "Dubois",
    "Laurent", "Moreau", "Rossi", "Russo", "Ferrari", "Novak", "Horvat", "Kowalski", "Berg",
)
FIRST_NAMES = (
    "Alice", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kira", "Liam", "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Will", "Xena", "Yusuf", "Zoe", "Priya", "Chen", "Lena", "Marco",
)
# Accented words whose accents NFKD decomposes (no ß, ø, æ, ł: those do not decompose).
ACCENTED = (
    "Café", "Lumière", "München", "Zürich", "Málaga", "Söderberg", "Crème", "Señor", "Açaí",
    "Québec", "Köln", "Düsseldorf", "Gävle", "Umeå", "Córdoba", "Bogotá", "Príncipe", "Ténéré",
)
# Legal suffixes as they appear in the wild; all are dropped by name normalization.
LEGAL_SUFFIXES = (
    "Inc", "Inc.", ", Inc.", "LLC", "L.L.C.", "GmbH", "Ltd", "Ltd.", "Limited", "S.A.", "SA",
    "Corp", "Corp.", "Corporation", "PLC", "Pty Ltd", "AG", "B.V.", "BV", "SAS", "Oy", "AB",
    "S.r.l.", "SpA", "SARL", "KK", "LLP", "NV", "Co.",
)
TLDS = (
    ("com", 50), ("io", 8), ("net", 5), ("ai", 3), ("co", 2), ("de", 5), ("co.uk", 7),
    ("com.au", 4), ("fr", 3), ("co.jp", 2), ("com.br", 2), ("nl", 2), ("ca", 2), ("ch", 1),
    ("es", 1), ("se", 1), ("org", 2),
)
IDN_TLDS = ("de", "fr", "es", "ch", "se", "com")
# Private-section PSL suffixes: acme.github.io and beta.github.io are different companies.
PLATFORMS = (
    "github.io", "wixsite.com", "herokuapp.com", "myshopify.com", "netlify.app",
    "vercel.app", "webflow.io",
)
GENERIC_HOSTS = ("gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com")
SOCIAL_HOSTS = ("linkedin.com/company", "facebook.com", "www.linkedin.com/company")
BARE_HOSTS = ("localhost", "intranet", "http://crm-server/", "fileserver")
PATHS = ("/", "/about", "/en-us/", "/contact?ref=crm", "/products?id=12&x=1", "#top", "/index.html")
SUBDOMAINS = ("shop", "app", "eu", "blog", "store", "portal")
PRODUCTS = ("Platform", "Renewal", "Expansion", "Pilot", "Enterprise", "Starter", "Add-on")


def strip_accents(value: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
    )


def name_key(display: str) -> str:
    """The normalized form of a *base* name built here (no legal suffix, no punctuation)."""
    return " ".join(strip_accents(display).casefold().replace("&", " and ").split())


def base_name(rng: random.Random) -> str:
    """A company's base display name (no legal suffix)."""
    pattern = rng.random()
    if pattern < 0.35:
        name = f"{rng.choice(PREFIXES)} {rng.choice(CORES)}"
        if rng.random() < 0.6:
            name += f" {rng.choice(INDUSTRIES)}"
    elif pattern < 0.6:
        name = f"{rng.choice(PREFIXES)}{rng.choice(CORES).lower()} {rng.choice(INDUSTRIES)}"
    elif pattern < 0.75:
        name = f"{rng.choice(SURNAMES)} & {rng.choice(SURNAMES)}"
        if rng.random() < 0.5:
            name += f" {rng.choice(INDUSTRIES)}"
    elif pattern < 0.83:
        name = f"{rng.choice(ACCENTED)} {rng.choice(CORES)} {rng.choice(INDUSTRIES)}"
    else:
        name = f"{rng.choice(PREFIXES)} {rng.choice(SURNAMES)} {rng.choice(INDUSTRIES)}"
    return name


def domain_label(rng: random.Random, display: str, allow_idn: bool) -> str:
    """A DNS label derived from a company name, as marketing departments pick them."""
    words = display.replace("&", "and").split()
    if not allow_idn or display == strip_accents(display):
        words = [strip_accents(w) for w in words]
    words = [w.lower() for w in words]
    style = rng.random()
    if style < 0.45:
        label = "".join(words)
    elif style < 0.7:
        label = "-".join(words)
    elif style < 0.9:
        label = "".join(words[:2])
    else:
        label = "".join(w[0] for w in words[:-1]) + words[-1]
    return label[:40].strip("-")


def display_variant(rng: random.Random, display: str) -> str:
    """The same company name as another system spells it: case, suffix, accents, '&'."""
    out = display
    roll = rng.random()
    if roll < 0.3:
        suffix = rng.choice(LEGAL_SUFFIXES)
        out = f"{out}{suffix}" if suffix.startswith(",") else f"{out} {suffix}"
    if rng.random() < 0.15:
        out = out.upper()
    elif rng.random() < 0.1:
        out = out.lower()
    if rng.random() < 0.3:
        out = strip_accents(out)
    if "&" in out and rng.random() < 0.4:
        out = out.replace("&", "and")
    elif " and " in out and rng.random() < 0.4:
        out = out.replace(" and ", " & ")
    if rng.random() < 0.05 and " " in out:
        first, rest = out.split(" ", 1)
        out = f"{first}-{rest}"
    return out


def website_form(rng: random.Random, domain: str) -> str:
    """One awkward but usable way of writing `domain` (DESIGN.md section 4)."""
    roll = rng.random()
    if roll < 0.2:
        return domain
    if roll < 0.35:
        return f"www.{domain}"
    if roll < 0.5:
        return f"https://www.{domain}{rng.choice(PATHS)}"
    if roll < 0.6:
        return f"http://{domain}"
    if roll < 0.68:
        return f"HTTPS://WWW.{domain.upper()}/"
    if roll < 0.76:
        host = f"{rng.choice(SUBDOMAINS)}.{domain}"
        return f"https://{host.capitalize()}{rng.choice(PATHS)}"
    if roll < 0.82:
        return f"http://{domain}:{rng.choice((8080, 8443, 443))}/"
    if roll < 0.86:
        return f"https://sales:secret@{domain}/"
    if roll < 0.93 and not domain.isascii():
        return domain.encode("idna").decode("ascii")
    if roll < 0.96:
        return f"https://{domain}/?utm_source=partner#pricing"
    return f"{domain.capitalize()}"


def unusable_website(rng: random.Random, label: str) -> str | None:
    """A website value that yields no match key: empty, IP, bare host, free mail, social."""
    roll = rng.random()
    if roll < 0.35:
        return None
    if roll < 0.45:
        return ""
    if roll < 0.55:
        return f"http://10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}/"
    if roll < 0.62:
        return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if roll < 0.7:
        return rng.choice(BARE_HOSTS)
    if roll < 0.85:
        return rng.choice(GENERIC_HOSTS)
    return f"https://{rng.choice(SOCIAL_HOSTS)}/{label}"


def person(rng: random.Random, email_domain: str) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    return f"{first} {last}", f"{first.lower()}.{last.lower()}@{email_domain}"


def misspell(rng: random.Random, display: str) -> str:
    """One typo (swap, drop or double a letter) inside the longest word of the name."""
    words = display.split(" ")
    i = max(range(len(words)), key=lambda k: len(words[k]))
    word = words[i]
    if len(word) < 5:
        return display
    pos = rng.randrange(1, len(word) - 2)
    kind = rng.random()
    if kind < 0.4:
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
    elif kind < 0.7:
        word = word[:pos] + word[pos + 1:]
    else:
        word = word[:pos] + word[pos] + word[pos:]
    words[i] = word
    return " ".join(words)

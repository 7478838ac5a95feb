"""Country names and ISO 3166 alpha-3 codes → alpha-2, for the ``country`` transform.

Covers the countries Dutch and Belgian webshops ship to most (EU/EEA, UK, Switzerland
and the larger overseas markets) in English, Dutch, German and French. Anything else can
be added per tenant in ``settings.countries`` (name → ISO-2).
"""

from __future__ import annotations

import unicodedata

#: alpha-2 → (alpha-3, names...)
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "NL": ("NLD", "Netherlands", "The Netherlands", "Nederland", "Niederlande", "Pays-Bas", "Holland"),
    "BE": ("BEL", "Belgium", "België", "Belgie", "Belgien", "Belgique"),
    "LU": ("LUX", "Luxembourg", "Luxemburg"),
    "DE": ("DEU", "Germany", "Duitsland", "Deutschland", "Allemagne"),
    "FR": ("FRA", "France", "Frankrijk", "Frankreich"),
    "GB": ("GBR", "United Kingdom", "Great Britain", "UK", "Verenigd Koninkrijk", "Groot-Brittannië", "Vereinigtes Königreich", "Royaume-Uni"),
    "IE": ("IRL", "Ireland", "Ierland", "Irland", "Irlande"),
    "AT": ("AUT", "Austria", "Oostenrijk", "Österreich", "Autriche"),
    "CH": ("CHE", "Switzerland", "Zwitserland", "Schweiz", "Suisse"),
    "DK": ("DNK", "Denmark", "Denemarken", "Dänemark", "Danemark"),
    "SE": ("SWE", "Sweden", "Zweden", "Schweden", "Suède"),
    "NO": ("NOR", "Norway", "Noorwegen", "Norwegen", "Norvège"),
    "FI": ("FIN", "Finland", "Finnland", "Finlande"),
    "ES": ("ESP", "Spain", "Spanje", "Spanien", "Espagne"),
    "PT": ("PRT", "Portugal"),
    "IT": ("ITA", "Italy", "Italië", "Italie", "Italien"),
    "PL": ("POL", "Poland", "Polen", "Pologne"),
    "CZ": ("CZE", "Czech Republic", "Czechia", "Tsjechië", "Tschechien", "Tchéquie"),
    "SK": ("SVK", "Slovakia", "Slowakije", "Slowakei", "Slovaquie"),
    "HU": ("HUN", "Hungary", "Hongarije", "Ungarn", "Hongrie"),
    "SI": ("SVN", "Slovenia", "Slovenië", "Slowenien", "Slovénie"),
    "HR": ("HRV", "Croatia", "Kroatië", "Kroatien", "Croatie"),
    "RO": ("ROU", "Romania", "Roemenië", "Rumänien", "Roumanie"),
    "BG": ("BGR", "Bulgaria", "Bulgarije", "Bulgarien", "Bulgarie"),
    "GR": ("GRC", "Greece", "Griekenland", "Griechenland", "Grèce"),
    "CY": ("CYP", "Cyprus", "Zypern", "Chypre"),
    "MT": ("MLT", "Malta", "Malte"),
    "EE": ("EST", "Estonia", "Estland", "Estonie"),
    "LV": ("LVA", "Latvia", "Letland", "Lettland", "Lettonie"),
    "LT": ("LTU", "Lithuania", "Litouwen", "Litauen", "Lituanie"),
    "IS": ("ISL", "Iceland", "IJsland", "Island", "Islande"),
    "LI": ("LIE", "Liechtenstein"),
    "MC": ("MCO", "Monaco"),
    "US": ("USA", "United States", "United States of America", "Verenigde Staten", "Vereinigte Staaten", "États-Unis"),
    "CA": ("CAN", "Canada", "Kanada"),
    "AU": ("AUS", "Australia", "Australië", "Australien", "Australie"),
    "NZ": ("NZL", "New Zealand", "Nieuw-Zeeland", "Neuseeland", "Nouvelle-Zélande"),
    "JP": ("JPN", "Japan", "Japon"),
    "CN": ("CHN", "China", "Chine"),
    "TR": ("TUR", "Turkey", "Turkije", "Türkei", "Turquie", "Türkiye"),
    "MA": ("MAR", "Morocco", "Marokko", "Maroc"),
    "SR": ("SUR", "Suriname"),
    "CW": ("CUW", "Curaçao", "Curacao"),
    "AW": ("ABW", "Aruba"),
}

#: Codes that are not ISO but turn up in shop data.
_ALIASES = {"UK": "GB", "EL": "GR"}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


_BY_KEY: dict[str, str] = {}
for _alpha2, (_alpha3, *_names) in _COUNTRIES.items():
    _BY_KEY[_fold(_alpha2)] = _alpha2
    _BY_KEY[_fold(_alpha3)] = _alpha2
    for _name in _names:
        _BY_KEY.setdefault(_fold(_name), _alpha2)
for _alias, _alpha2 in _ALIASES.items():
    _BY_KEY[_fold(_alias)] = _alpha2


def country_code(text: str) -> str | None:
    """ISO alpha-2 for a code or name, or ``None`` when unknown.

    Any two-letter code is taken as alpha-2 (Lightspeed country objects carry ``code``),
    so countries outside the name table still pass through."""
    key = _fold(text)
    if key in _BY_KEY:
        return _BY_KEY[key]
    if len(key) == 2 and key.isascii() and key.isalpha():
        return key.upper()
    return None

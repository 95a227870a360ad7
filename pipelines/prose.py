"""Seeded prose for the sample crawl: a small hand-written grammar of local-news English.

Each topic has its own lexicon (who acts, on what, where, about which worries); sentence frames are
shared. A page draws frames and fillers from shuffled decks, so words repeat across a site (the
regularity a tiny LM can learn) but rarely within a page (so pages pass repetition filters and
independent pages are not near-duplicates of each other). Everything here is pure: the same
`random.Random` state gives the same text.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

Verb = tuple[str, str, str]  # past, base, past participle


@dataclass(frozen=True)
class Topic:
    """One subject area's lexicon; every field feeds a slot of the sentence frames."""

    name: str
    section: str
    agents: tuple[str, ...]
    things: tuple[str, ...]
    verbs: tuple[Verb, ...]
    places: tuple[str, ...]
    qualities: tuple[str, ...]
    issues: tuple[str, ...]
    roles: tuple[str, ...]


def _verbs(spec: str) -> tuple[Verb, ...]:
    """'repaired/repair/repaired, ...' -> ((past, base, participle), ...)."""
    out = []
    for item in spec.split(","):
        past, base, part = item.strip().split("/")
        out.append((past, base, part))
    return tuple(out)


def _list(spec: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in spec.split(";") if s.strip())


TOPICS: tuple[Topic, ...] = (
    Topic(
        name="harbour",
        section="harbour",
        agents=_list(
            "the harbour master; the ferry crew; the lifeboat volunteers; a retired skipper; the dredging "
            "contractor; the fishing cooperative; the coastguard team; two young deckhands; the port "
            "authority; the sailing club"
        ),
        things=_list(
            "the north pier; the old slipway; a new tide gauge; the ferry timetable; the lobster pots; the "
            "breakwater lights; the fuel jetty; the winter moorings; the sea wall; a leaking pontoon; the "
            "harbour charts; the fish market roof"
        ),
        verbs=_verbs(
            "repaired/repair/repaired, inspected/inspect/inspected, painted/paint/painted, "
            "measured/measure/measured, moved/move/moved, surveyed/survey/surveyed, rebuilt/rebuild/rebuilt, "
            "cleared/clear/cleared, checked/check/checked, replaced/replace/replaced, hauled/haul/hauled, "
            "mapped/map/mapped"
        ),
        places=_list(
            "along the east quay; near the old lighthouse; beside the fish market; at the harbour mouth; on "
            "the outer wall; below the coastguard station; across the inner basin; off the shingle beach"
        ),
        qualities=_list(
            "weathered; busy; fragile; sturdy; crowded; salty; sheltered; exposed; dependable; rusty"
        ),
        issues=_list(
            "the cost of dredging; winter storms; rising fuel prices; the shortage of berths; silt in the "
            "channel; the future of the ferry; insurance for small boats; the quota for mackerel"
        ),
        roles=_list(
            "has worked on the ferries; has fished these waters; has kept the harbour log; has crewed the "
            "lifeboat; has run the chandlery"
        ),
    ),
    Topic(
        name="allotments",
        section="allotments",
        agents=_list(
            "the allotment society; a first-year plot holder; the seed swap volunteers; the committee; an "
            "elderly gardener; the school gardening club; the compost team; a pair of neighbours; the water "
            "officer; the orchard group"
        ),
        things=_list(
            "the raised beds; the shared greenhouse; a row of runner beans; the compost bays; the rhubarb "
            "patch; the tool shed; the rainwater butts; the leek trench; the fruit cage; a stubborn bindweed "
            "patch; the potato harvest; the seed catalogue"
        ),
        verbs=_verbs(
            "planted/plant/planted, watered/water/watered, weeded/weed/weeded, mulched/mulch/mulched, "
            "pruned/prune/pruned, harvested/harvest/harvested, dug/dig/dug, covered/cover/covered, "
            "netted/net/netted, divided/divide/divided, sowed/sow/sown, staked/stake/staked"
        ),
        places=_list(
            "on the lower terrace; by the north hedge; behind the community hut; near the water trough; at "
            "the far end of the site; under the old pear tree; beside the main path; in the sunniest corner"
        ),
        qualities=_list(
            "muddy; generous; patient; overgrown; tidy; fragrant; productive; waterlogged; sheltered; hopeful"
        ),
        issues=_list(
            "slugs after rain; the waiting list for plots; a dry spring; the price of seed potatoes; blight "
            "on the tomatoes; the shared water rules; the rent review; vandalism at night"
        ),
        roles=_list(
            "has tended a plot here; has chaired the society; has grown prize onions; has run the seed "
            "swap; has kept hens nearby"
        ),
    ),
    Topic(
        name="town",
        section="town",
        agents=_list(
            "the town council; the planning committee; local residents; the bus operator; the highways "
            "team; a group of shopkeepers; the mayor; the parish clerk; cycling campaigners; the youth forum"
        ),
        things=_list(
            "the bus shelter on Mill Road; the new zebra crossing; the market square; the parking charges; "
            "the library opening hours; the bridge repairs; the town budget; a draft local plan; the flood "
            "barrier; the recycling centre; the street lighting; the footpath to the station"
        ),
        verbs=_verbs(
            "approved/approve/approved, debated/debate/debated, delayed/delay/delayed, "
            "reviewed/review/reviewed, funded/fund/funded, opposed/oppose/opposed, "
            "welcomed/welcome/welcomed, "
            "proposed/propose/proposed, postponed/postpone/postponed, published/publish/published, "
            "questioned/question/questioned, extended/extend/extended"
        ),
        places=_list(
            "at the town hall; in the council chamber; outside the post office; along the high street; near "
            "the railway station; at the community centre; on the ring road; in the old market hall"
        ),
        qualities=_list(
            "lengthy; heated; cautious; popular; expensive; overdue; controversial; modest; practical; "
            "ambitious"
        ),
        issues=_list(
            "the housing shortage; traffic on market days; the rising cost of energy; empty shops; the "
            "state of the pavements; late buses; the flood risk; air quality near schools"
        ),
        roles=_list(
            "has sat on the council; has run a shop on the high street; has driven the number nine bus; "
            "has lived in the town; has campaigned for safer roads"
        ),
    ),
    Topic(
        name="astronomy",
        section="sky",
        agents=_list(
            "the astronomy society; a visiting lecturer; the observing group; two sixth form students; the "
            "club treasurer; a keen amateur; the dark sky campaigners; the outreach team; the telescope "
            "committee; the new members"
        ),
        things=_list(
            "the club telescope; a faint comet; the Andromeda galaxy; the meteor shower; the observatory "
            "dome; the star charts; a new camera mount; the light pollution survey; the rings of Saturn; "
            "the lunar eclipse; a variable star; the winter sky guide"
        ),
        verbs=_verbs(
            "observed/observe/observed, photographed/photograph/photographed, tracked/track/tracked, "
            "calibrated/calibrate/calibrated, recorded/record/recorded, catalogued/catalogue/catalogued, "
            "aligned/align/aligned, studied/study/studied, sketched/sketch/sketched, "
            "located/locate/located, described/describe/described, presented/present/presented"
        ),
        places=_list(
            "from the hill above the village; at the observatory; in the school playing field; beside the "
            "reservoir; under a clear sky; on the cricket pitch; far from the street lights; in the club hut"
        ),
        qualities=_list(
            "faint; brilliant; patient; cold; crisp; steady; hazy; remarkable; distant; rewarding"
        ),
        issues=_list(
            "light pollution; cloudy winters; the cost of new eyepieces; satellite trails; funding for "
            "outreach; the ageing membership; damp in the dome; the loss of dark sites"
        ),
        roles=_list(
            "has observed variable stars; has led the outreach evenings; has ground telescope mirrors; has "
            "edited the newsletter; has taught physics"
        ),
    ),
    Topic(
        name="baking",
        section="kitchen",
        agents=_list(
            "the village bakery; a home baker; the cookery class; the judges at the show; the head chef; "
            "the bread club; two apprentices; the cafe owner; the school cook; the market stallholders"
        ),
        things=_list(
            "a sourdough starter; the rye loaves; the wood fired oven; a tray of cinnamon buns; the pastry "
            "dough; the recipe book; the spelt flour; a lemon drizzle cake; the proving baskets; the "
            "seasonal menu; the jam tarts; the kitchen scales"
        ),
        verbs=_verbs(
            "baked/bake/baked, kneaded/knead/kneaded, shaped/shape/shaped, tested/test/tested, "
            "tasted/taste/tasted, adapted/adapt/adapted, weighed/weigh/weighed, glazed/glaze/glazed, "
            "folded/fold/folded, sold/sell/sold, cooled/cool/cooled, shared/share/shared"
        ),
        places=_list(
            "in the back kitchen; at the Saturday market; behind the counter; at the village show; in the "
            "church hall; by the open window; on the long oak table; at the corner cafe"
        ),
        qualities=_list("golden; crusty; tender; rich; airy; dense; fragrant; flaky; sticky; delicate"),
        issues=_list(
            "the price of butter; early starts; the rising rent on the shop; the demand for gluten free "
            "bread; food waste; staff shortages; the energy bill for the ovens; hygiene inspections"
        ),
        roles=_list(
            "has baked bread; has judged the show; has run the cafe; has taught the evening class; has "
            "kept the starter alive"
        ),
    ),
    Topic(
        name="cycling",
        section="cycling",
        agents=_list(
            "the cycling club; a group of commuters; the Sunday riders; the bike repair volunteers; the "
            "route planner; a touring couple; the junior squad; the race organisers; the trail wardens; the "
            "club captain"
        ),
        things=_list(
            "the canal towpath; a new cycle lane; the hill climb course; the club tandem; the repair stand; "
            "the winter training plan; the gravel route; the puncture kit; the lights on the bridge; the "
            "route map; the timing chips; a borrowed road bike"
        ),
        verbs=_verbs(
            "rode/ride/ridden, mapped/map/mapped, resurfaced/resurface/resurfaced, timed/time/timed, "
            "marked/mark/marked, serviced/service/serviced, tested/test/tested, cleaned/clean/cleaned, "
            "lent/lend/lent, signposted/signpost/signposted, adjusted/adjust/adjusted, "
            "completed/complete/completed"
        ),
        places=_list(
            "along the canal; over the moor road; through the forest park; up the long hill; around the "
            "reservoir; between the two villages; on the old railway line; past the water mill"
        ),
        qualities=_list("steep; windy; smooth; gruelling; scenic; muddy; quiet; fast; tiring; rewarding"),
        issues=_list(
            "potholes on the back roads; bike theft; safe routes to school; the shortage of racks; winter "
            "grit; close passing by lorries; the cost of spare parts; poor signage"
        ),
        roles=_list(
            "has raced in the club colours; has commuted by bike; has led the Sunday rides; has fixed "
            "bikes for free; has mapped the local trails"
        ),
    ),
    Topic(
        name="archives",
        section="archives",
        agents=_list(
            "the county archivist; the library volunteers; a local historian; the reading group; the "
            "digitisation team; a retired teacher; the family history society; the conservation officer; "
            "the children's librarian; the friends of the library"
        ),
        things=_list(
            "the parish registers; a box of old letters; the photograph collection; the map room; the "
            "reading list; the card catalogue; a damaged ledger; the oral history recordings; the newspaper "
            "archive; the rare book cupboard; the summer reading challenge; the local studies shelf"
        ),
        verbs=_verbs(
            "catalogued/catalogue/catalogued, scanned/scan/scanned, repaired/repair/repaired, "
            "transcribed/transcribe/transcribed, indexed/index/indexed, displayed/display/displayed, "
            "rehoused/rehouse/rehoused, digitised/digitise/digitised, borrowed/borrow/borrowed, "
            "labelled/label/labelled, sorted/sort/sorted, rediscovered/rediscover/rediscovered"
        ),
        places=_list(
            "in the search room; on the top floor; in the basement store; at the branch library; beside the "
            "reading tables; in the old school building; at the records office; in a locked cabinet"
        ),
        qualities=_list(
            "fragile; faded; fascinating; dusty; neglected; valuable; careful; detailed; curious; orderly"
        ),
        issues=_list(
            "damp in the store; the cuts to opening hours; copyright on old photographs; the backlog of "
            "donations; the cost of conservation; fading ink; missing pages; volunteer training"
        ),
        roles=_list(
            "has researched the parish records; has volunteered at the library; has written three local "
            "histories; has run the reading group; has catalogued the map collection"
        ),
    ),
    Topic(
        name="weather",
        section="weather",
        agents=_list(
            "the weather station volunteers; a retired forecaster; the flood wardens; the farmers on the "
            "valley floor; the school science club; the rainfall observers; the county ecologist; the river "
            "trust; the emergency planners; the snow clearing crew"
        ),
        things=_list(
            "the rain gauge; the river level; the frost record; the wind vane on the church; a rare "
            "hailstorm; the drought warning; the sunshine recorder; the monthly rainfall; the flood alert; "
            "the snow drifts; the thermometer screen; the storm drains"
        ),
        verbs=_verbs(
            "logged/log/logged, compared/compare/compared, measured/measure/measured, "
            "predicted/predict/predicted, monitored/monitor/monitored, reported/report/reported, "
            "reset/reset/reset, cleared/clear/cleared, charted/chart/charted, checked/check/checked, "
            "studied/study/studied, noted/note/noted"
        ),
        places=_list(
            "on the valley floor; at the top of the ridge; beside the river; in the school grounds; near "
            "the reservoir dam; on the exposed hillside; in the sheltered garden; along the flood plain"
        ),
        qualities=_list("mild; bitter; damp; unsettled; unusual; gusty; dry; humid; stormy; changeable"),
        issues=_list(
            "the wettest winter on record; late frosts; summer drought; rising river levels; gaps in old "
            "records; storm damage; the heat in town centres; the cost of flood defences"
        ),
        roles=_list(
            "has kept daily readings; has farmed the valley; has worked as a forecaster; has warded the "
            "flood plain; has taught geography"
        ),
    ),
    Topic(
        name="bees",
        section="bees",
        agents=_list(
            "the beekeeping association; a beginner beekeeper; the swarm collectors; the honey judges; the "
            "apiary manager; an experienced keeper; the bee inspector; the school eco club; the orchard "
            "owners; the association mentors"
        ),
        things=_list(
            "the hive records; a strong colony; the new queen; the honey harvest; the winter feed; the "
            "observation hive; the wax foundation; the spring inspection; the varroa treatment; a stray "
            "swarm; the extractor; the heather honey"
        ),
        verbs=_verbs(
            "inspected/inspect/inspected, collected/collect/collected, treated/treat/treated, "
            "fed/feed/fed, marked/mark/marked, extracted/extract/extracted, moved/move/moved, "
            "weighed/weigh/weighed, united/unite/united, housed/house/housed, checked/check/checked, "
            "bottled/bottle/bottled"
        ),
        places=_list(
            "at the association apiary; among the apple trees; on the heather moor; behind the village "
            "hall; at the edge of the meadow; in the walled garden; near the lime trees; on the sunny bank"
        ),
        qualities=_list(
            "calm; productive; defensive; healthy; sweet; busy; gentle; thriving; fragile; seasonal"
        ),
        issues=_list(
            "the spread of varroa; a cold wet spring; pesticide use; the loss of wildflower meadows; "
            "swarming season; the price of jars; the threat from hornets; winter losses"
        ),
        roles=_list(
            "has kept bees; has mentored beginners; has judged honey; has inspected hives for the county; "
            "has run the apiary"
        ),
    ),
    Topic(
        name="music",
        section="music",
        agents=_list(
            "the community choir; the brass band; a young pianist; the music director; the parish "
            "organist; the folk club; the string quartet; the festival committee; the sound engineers; the "
            "junior singers"
        ),
        things=_list(
            "the spring concert; a new arrangement; the church organ; the rehearsal schedule; the hall "
            "acoustics; the carol service; an old hymn book; the festival programme; the choir robes; a "
            "borrowed cello; the recording session; the ticket sales"
        ),
        verbs=_verbs(
            "rehearsed/rehearse/rehearsed, performed/perform/performed, tuned/tune/tuned, "
            "arranged/arrange/arranged, recorded/record/recorded, announced/announce/announced, "
            "restored/restore/restored, practised/practise/practised, organised/organise/organised, "
            "conducted/conduct/conducted, planned/plan/planned, premiered/premiere/premiered"
        ),
        places=_list(
            "in the parish church; at the town hall; in the school hall; on the bandstand; at the folk "
            "club; in the cathedral; at the arts centre; in the old chapel"
        ),
        qualities=_list(
            "joyful; ambitious; haunting; lively; polished; nervous; moving; crowded; memorable; tuneful"
        ),
        issues=_list(
            "the shortage of tenors; rising hall hire costs; falling ticket sales; the cost of sheet music; "
            "the lack of rehearsal space; recruiting young members; the condition of the organ; funding for "
            "the festival"
        ),
        roles=_list(
            "has sung with the choir; has played in the band; has conducted the orchestra; has taught "
            "piano; has organised the festival"
        ),
    ),
)

# A market lexicon with accented words, for the page served in windows-1252 (all of it encodes there).
MARKET = Topic(
    name="market",
    section="market",
    agents=_list(
        "the café owner; the crêpe stall; the fromagerie; the market traders; Zoë at the flower stall; "
        "Renée and her sons; the pâtissier; the new délicatessen"
    ),
    things=_list(
        "the crème brûlée; a tray of éclairs; the café terrace; the rosé from the valley; the smörgåsbord "
        "table; a jar of jalapeño salsa; the piñata stall; the crêpe pan; the façade of the old market; "
        "the soufflé recipe; the purée of chestnuts; a basket of pâté"
    ),
    verbs=_verbs(
        "served/serve/served, sold/sell/sold, sampled/sample/sampled, praised/praise/praised, "
        "arranged/arrange/arranged, priced/price/priced, wrapped/wrap/wrapped, shared/share/shared"
    ),
    places=_list(
        "under the café awning; beside the fountain; at the entrée to the hall; near the crêperie; in the "
        "covered arcade; on the cobbled square"
    ),
    qualities=_list("naïve; exposé-worthy; blasé; soigné; délicieux; très cher; rich; fragrant; lively"),
    issues=_list(
        "the rent for stalls; the price of crème fraîche; a rather naïve business plan; the new rosé tax; "
        "the queue at the crêpe stall; parking on market days"
    ),
    roles=_list(
        "has run the café; has sold cheese at the fromagerie; has baked brioche; has managed the market; "
        "has cooked soufflés"
    ),
)

FIRST_NAMES = _list(
    "Ada; Bilal; Carys; Dmitri; Elin; Fergus; Grace; Hamid; Isla; Jonah; Kezia; Leon; Maren; Niall; Olu; "
    "Priya; Quentin; Rosa; Sami; Tamsin; Uma; Victor; Wren; Yusuf; Zara"
)
SURNAMES = _list(
    "Abbott; Birch; Carver; Dunmore; Ellery; Fenwick; Gale; Hartley; Ives; Jolliffe; Kettering; Lowther; "
    "Marsh; Nettleton; Okafor; Penrose; Quayle; Radley; Sefton; Thackeray; Underwood; Varga; Whitlock; "
    "Yarrow"
)

_SHARED: dict[str, tuple[str, ...]] = {
    "time": _list(
        "last Tuesday; early in the spring; over the past decade; before dawn on Saturday; during the long "
        "weekend; late last autumn; in the first week of March; after the storm; at the end of the season; "
        "on a grey morning in January; later that evening; within a fortnight"
    ),
    "connective": _list(
        "However; Meanwhile; In the end; As a result; By contrast; Even so; For now; In practice; At first; "
        "Later"
    ),
    "report": _list(
        "said; explained; recalled; pointed out; admitted; argued; noted; told us; remarked; insisted"
    ),
    "said": _list("said; explained; added; recalled; laughed; agreed"),
    "change": _list(
        "has become a regular topic at meetings; got noticeably worse this year; eased a little since the "
        "summer; drew more attention than ever; divided opinion in the village; kept everyone busy; cost "
        "far more than expected; came up at every meeting"
    ),
    "freq": _list(
        "every week; twice a year; each spring; most mornings; whenever the weather allows; every other "
        "Sunday; once a month; at the start of each season"
    ),
    "state": _list(
        "in good order; half finished; closed for repairs; busier than usual; quieter than expected; much "
        "improved; in need of attention; almost unrecognisable"
    ),
    "deadline": _list(
        "the end of the year; the first frost; the summer fair; the next meeting; the autumn equinox; the "
        "spring holidays; the annual report; the start of the season"
    ),
    "quantity": _list(
        "a great deal of interest; a surprising amount of interest; little interest; steady interest; "
        "growing interest; some doubt"
    ),
    "count": _list("two; three; four; five; six; seven; eight; a dozen; twenty; thirty; forty"),
    "unit": _list("weeks; months; days; evenings; seasons; years"),
    "period": _list("week; season; year; month; weekend"),
    "short": _list(
        "Not everyone agreed.; The answer was not simple.; Nobody was surprised.; It was a long day.; "
        "Progress was slow but steady.; Opinions remain divided.; The mood was cheerful.; There is more to "
        "do."
    ),
    "quote": _list(
        "It was worth every minute; We could not have done it alone; Next year will be even better; I have "
        "never seen anything like it; We learned a great deal; It is harder than it looks"
    ),
}

FRAMES: tuple[str, ...] = (
    "{agent} {verb} {thing} {place} {time}.",
    "{time}, {agent} {verb} {thing}.",
    '"We {verb_base} {thing} {freq}," {said} {person}, who {role} for {years} years.',
    "According to {person}, {issue} {change}.",
    "{connective}, {agent} {verb} {thing}, and {agent2} {verb2} {thing2}.",
    "Nobody expected {thing} to look so {quality} {place}.",
    "{person} {report} that {agent} {verb} {thing} {time}.",
    "It took {count} {unit} before {agent} {verb} {thing}.",
    "For {agent}, {issue} mattered more than {issue2}.",
    "{agent} made sure that {thing} got {verb_part} {time}.",
    "Questions about {issue} came up again {time}.",
    "There was {quantity} in {thing} {place}.",
    "{agent} hoped to {verb_base} {thing} before {deadline}.",
    "If {issue} gets any worse, {agent} will have to {verb_base} {thing} {place}.",
    "Visitors who came {place} {time} found {thing} {state}.",
    "{count} people turned up {place} to see {thing}.",
    "Records kept since {year} suggest that {issue} comes and goes in cycles.",
    "{agent} promised a short report on {issue} before {deadline}.",
    "Few people realise how {quality} {thing} can be {place}.",
    "{short}",
    "{connective}, {issue} {change}, and {agent} {verb} {thing} {place}.",
    "Ask {person} about {thing} and you will soon hear about {issue}.",
    "The first thing {agent} {verb} {time} was {thing}.",
    "Without {agent}, {thing} would never have been {verb_part}.",
    "{person}, who {role} for {years} years, {report} that {issue} {change}.",
    '"{quote}," {said} {person}.',
)

TITLE_FRAMES: tuple[str, ...] = (
    "{agent} {verb} {thing}",
    "What {issue} means for {agent}",
    "{thing} {place}",
    "A {quality} {period} for {agent}",
    "Notes on {issue}",
    "Why {agent} {verb} {thing}",
)

_FORMATTER = string.Formatter()


class Deck(Generic[T]):
    """Draws without replacement and reshuffles when empty: variety within a page, reuse across pages."""

    def __init__(self, items: tuple[T, ...] | list[T], rng: random.Random) -> None:
        self._items = list(items)
        self._rng = rng
        self._left: list[T] = []

    def draw(self) -> T:
        if not self._left:
            self._left = list(self._items)
            self._rng.shuffle(self._left)
        return self._left.pop()


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[tuple[str, ...], ...]  # paragraphs of sentences

    @property
    def words(self) -> int:
        return sum(len(s.split()) for p in self.paragraphs for s in p)

    def text(self) -> str:
        return "\n\n".join(" ".join(p) for p in self.paragraphs)


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class Writer:
    """Writes sentences, titles and articles on one topic from one seeded generator."""

    def __init__(self, topic: Topic, rng: random.Random) -> None:
        self.topic = topic
        self.rng = rng
        self._verbs: Deck[Verb] = Deck(topic.verbs, rng)
        self._decks: dict[str, Deck[str]] = {
            "agent": Deck(topic.agents, rng),
            "thing": Deck(topic.things, rng),
            "place": Deck(topic.places, rng),
            "quality": Deck(topic.qualities, rng),
            "issue": Deck(topic.issues, rng),
            "role": Deck(topic.roles, rng),
            "first": Deck(FIRST_NAMES, rng),
            "last": Deck(SURNAMES, rng),
            "frame": Deck(FRAMES, rng),
            "title": Deck(TITLE_FRAMES, rng),
            **{k: Deck(v, rng) for k, v in _SHARED.items()},
        }

    def draw(self, key: str) -> str:
        return self._decks[key].draw()

    def person(self) -> str:
        return f"{self.draw('first')} {self.draw('last')}"

    def _fill(self, frame: str) -> str:
        values: dict[str, str] = {}
        verbs: dict[str, Verb] = {}
        for _, field, _, _ in _FORMATTER.parse(frame):
            if field is None or field in values:
                continue
            if field.startswith("verb"):
                slot = "2" if field.endswith("2") else "1"
                if slot not in verbs:
                    verbs[slot] = self._verbs.draw()
                past, base, part = verbs[slot]
                values[field] = base if field == "verb_base" else part if field == "verb_part" else past
            elif field == "person":
                values[field] = self.person()
            elif field == "years":
                values[field] = str(self.rng.randint(3, 40))
            elif field == "year":
                values[field] = str(self.rng.randint(1921, 1999))
            else:
                values[field] = self.draw(field.rstrip("2"))
        return cap(frame.format(**values))

    def sentence(self) -> str:
        return self._fill(self.draw("frame"))

    def title(self) -> str:
        return self._fill(self.draw("title"))

    def paragraph(self) -> tuple[str, ...]:
        return tuple(self.sentence() for _ in range(self.rng.randint(3, 6)))

    def article(self, target_words: int) -> Article:
        paragraphs: list[tuple[str, ...]] = []
        words = 0
        while words < target_words or len(paragraphs) < 3:
            p = self.paragraph()
            paragraphs.append(p)
            words += sum(len(s.split()) for s in p)
        return Article(self.title(), tuple(paragraphs))


def page_length(rng: random.Random) -> int:
    """Body words of a normal page: 150 to 900, most around 350."""
    return int(rng.triangular(150, 900, 300))

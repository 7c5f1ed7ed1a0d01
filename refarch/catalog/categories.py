"""The spec table the product generator draws from: categories, product types and attributes.

Each :class:`CategorySpec` holds a few :class:`ProductType`\\ s. A product type lists the
materials it is made of, the *uses* it serves (verb phrases that complete "this travel mug
..."), its *features* (noun phrases) and a price range in dollars. The generator builds names
and natural descriptions from these, and stores the choices it made in
``Product.attributes`` (see :data:`ATTRIBUTE_KEYS`), so that every generated product can be
traced back to this table.

Each product type also has ``queries``: what a shopper would type when looking for it, worded
unlike the descriptions. With ``attributes["type"]`` as the label they give a labelled query
set for search-quality benchmarks (:func:`labelled_queries`): a query's relevant products are
the products of its type.

Brands and product lines are invented; any likeness to real brands is accidental.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

#: Separator of the list-valued attributes (``uses`` and ``features``).
LIST_SEPARATOR = "; "

#: The keys the generator puts in ``Product.attributes`` and what each holds.
ATTRIBUTE_KEYS: dict[str, str] = {
    "category": "the category name, equal to Product.category (e.g. 'Drinkware')",
    "type": "the product type, lower case, a ProductType.name (e.g. 'travel mug')",
    "material": "the material, one of the type's materials (e.g. 'stainless steel')",
    "uses": "the 1-2 uses the description mentions, joined by LIST_SEPARATOR",
    "features": "the 2-3 features the description mentions, joined by LIST_SEPARATOR",
    "color": "the color named in the description",
    "brand": "the (invented) brand that starts the name",
    "size": "the size or pack named at the end of the name; absent for types without sizes",
}


@dataclass(frozen=True)
class ProductType:
    """One kind of product within a category, e.g. the travel mug within Drinkware."""

    #: Lower-case noun phrase as it reads in a sentence: "travel mug", "USB-C hub".
    name: str
    #: Materials it is made of: "stainless steel".
    materials: tuple[str, ...]
    #: Verb phrases that complete "this travel mug ...": "keeps coffee hot on the commute".
    uses: tuple[str, ...]
    #: Noun phrases, with their article: "a leak-proof flip lid".
    features: tuple[str, ...]
    #: What shoppers type when they want this type, worded unlike ``uses``.
    queries: tuple[str, ...]
    #: Lowest and highest price in whole dollars.
    price: tuple[int, int]
    #: Sizes or packs appended to names ("16 oz"); empty when the type has none.
    sizes: tuple[str, ...] = ()
    #: For plural names, the counter that makes a singular subject: "pair of" (running shoes).
    unit: str = ""

    @property
    def subject(self) -> str:
        """The name as the singular subject of a sentence: "travel mug", "pair of running shoes"."""
        return f"{self.unit} {self.name}" if self.unit else self.name

    @property
    def title(self) -> str:
        """The name as it appears in a product name: "Travel Mug", "USB-C Hub"."""
        return " ".join(word[:1].upper() + word[1:] for word in self.name.split())


@dataclass(frozen=True)
class CategorySpec:
    """A product category: its name, SKU prefix, the words of its product lines and its types."""

    #: Category name as stored in ``Product.category``: "Drinkware".
    name: str
    #: Three-letter SKU prefix: "DRK".
    code: str
    #: Product-line words used in names: "Commuter" in "Alder & Finch Commuter Travel Mug".
    lines: tuple[str, ...]
    types: tuple[ProductType, ...]

    @property
    def price_range(self) -> tuple[Decimal, Decimal]:
        """Lowest and highest price of any product in this category."""
        return (
            Decimal(min(t.price[0] for t in self.types)),
            Decimal(max(t.price[1] for t in self.types)),
        )


# fmt: off
CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("Drinkware", "DRK", ("Commuter", "Summit", "Everyday", "Harbor", "Trailhead"), (
        ProductType(
            "travel mug",
            ("stainless steel", "vacuum-insulated stainless steel", "powder-coated steel"),
            ("keeps coffee hot for hours on the morning commute",
             "keeps tea or coffee hot in the car without spilling",
             "keeps hot drinks warm from the train to the office"),
            ("a leak-proof flip lid", "double-wall vacuum insulation",
             "a slim base that fits car cup holders", "a one-handed push-button lid",
             "a sweat-free exterior", "a removable tea infuser"),
            ("keep my coffee hot on the commute", "spill-proof cup for hot coffee in the car"),
            (14, 45), ("12 oz", "16 oz", "20 oz")),
        ProductType(
            "water bottle",
            ("stainless steel", "Tritan plastic", "borosilicate glass", "aluminum"),
            ("keeps water ice-cold through a long hike",
             "holds enough water for a full gym session",
             "makes it easy to stay hydrated at your desk all day"),
            ("a wide mouth that takes ice cubes", "a leak-proof screw cap",
             "a built-in carry handle", "a straw lid for sipping",
             "time markings to track how much you drink", "a dishwasher-safe body"),
            ("bottle to carry cold water on a hike", "stay hydrated during workouts"),
            (9, 40), ("500 ml", "750 ml", "1 liter")),
        ProductType(
            "coffee mug",
            ("glazed ceramic", "stoneware", "porcelain"),
            ("holds a generous cup of coffee at the breakfast table",
             "serves tea, cocoa or coffee at home",
             "makes a cosy cup for slow weekend mornings"),
            ("a comfortable wide handle", "a microwave-safe glaze", "a dishwasher-safe finish",
             "a hand-thrown look", "a 350 ml capacity"),
            ("ceramic cup for coffee at home", "nice mug for my morning tea"),
            (6, 28)),
    )),
    CategorySpec("Lunch & Food Storage", "LUN", ("Office", "Picnic", "Daily", "Fresh", "Metro"), (
        ProductType(
            "lunch bag",
            ("insulated polyester", "waxed canvas", "recycled nylon", "neoprene"),
            ("keeps sandwiches and salads cool until lunchtime",
             "carries a packed lunch to work or school",
             "holds snacks and an ice pack for a day out"),
            ("a foil-lined insulated interior", "a wipe-clean lining",
             "a front zip pocket for cutlery", "an adjustable shoulder strap",
             "room for two food containers"),
            ("bag to pack my lunch for the office", "keep a packed lunch cold until noon"),
            (12, 40)),
        ProductType(
            "bento box",
            ("BPA-free plastic", "stainless steel", "bamboo fibre"),
            ("keeps rice, mains and sides apart in one box",
             "portions balanced meals for the work week",
             "packs a school lunch without the foods touching"),
            ("three leak-proof compartments", "a silicone sealing lid",
             "a matching fork and spoon", "a microwave-safe inner tray",
             "a secure elastic strap"),
            ("lunch container with separate compartments", "kids lunch box that keeps food apart"),
            (10, 38)),
        ProductType(
            "meal prep container set",
            ("borosilicate glass", "BPA-free plastic", "stainless steel"),
            ("stores a week of prepared meals in the fridge",
             "freezes leftovers in single portions",
             "reheats homemade meals at the office"),
            ("snap-lock airtight lids", "oven-safe glass bases", "a stackable nesting design",
             "a freezer-safe build", "measurement markings on the side"),
            ("containers to store leftovers in the fridge", "glass boxes for weekly meal prep"),
            (15, 55), ("set of 5", "set of 10")),
    )),
    CategorySpec("Kitchen Appliances", "KAP", ("Barista", "Chef", "Daily", "Pro", "Studio"), (
        ProductType(
            "espresso machine",
            ("brushed stainless steel", "die-cast aluminum"),
            ("pulls café-style espresso shots at home",
             "steams milk for lattes and cappuccinos",
             "brews a double shot in under a minute"),
            ("a 15-bar pump", "a steam wand for frothing milk", "a removable water tank",
             "a built-in burr grinder", "a cup warmer on top"),
            ("make lattes at home", "machine for barista style coffee in my kitchen"),
            (120, 900)),
        ProductType(
            "blender",
            ("BPA-free Tritan", "tempered glass", "stainless steel"),
            ("blends frozen fruit into smooth smoothies", "crushes ice for frozen drinks",
             "purees soups and sauces in seconds"),
            ("a 1200-watt motor", "hardened stainless steel blades",
             "pre-set smoothie and pulse programs", "a tamper for thick mixtures",
             "a single-serve to-go cup"),
            ("make smoothies every morning", "crush ice for frozen margaritas"),
            (40, 450)),
        ProductType(
            "electric kettle",
            ("stainless steel", "borosilicate glass", "matte black steel"),
            ("boils water for tea in a few minutes",
             "heats water to the right temperature for green tea or pour-over",
             "keeps water warm for a second cup"),
            ("variable temperature presets", "a keep-warm function", "automatic shut-off",
             "a gooseneck spout for pour-over", "a 1.7 liter capacity"),
            ("boil water quickly for tea", "kettle with temperature control for pour over"),
            (25, 160)),
        ProductType(
            "air fryer",
            ("stainless steel", "BPA-free plastic", "ceramic-coated steel"),
            ("makes crispy fries with little or no oil",
             "roasts vegetables and chicken wings quickly",
             "reheats leftovers without making them soggy"),
            ("a non-stick basket", "eight digital presets", "a see-through window",
             "a dishwasher-safe tray", "a 5.5 liter capacity"),
            ("cook crispy fries without deep frying", "healthier way to fry chicken wings"),
            (50, 250)),
    )),
    CategorySpec("Cookware", "CKW", ("Heritage", "Bistro", "Classic", "Pro", "Kitchen"), (
        ProductType(
            "skillet",
            ("cast iron", "carbon steel", "tri-ply stainless steel", "hard-anodized aluminum"),
            ("sears steaks with a deep brown crust", "fries eggs and pancakes for breakfast",
             "goes from the stovetop into the oven"),
            ("a pre-seasoned surface", "a helper handle", "pour spouts on both sides",
             "induction compatibility", "an oven-safe build up to 260 °C"),
            ("pan to sear a steak", "frying pan for eggs"),
            (20, 180), ("20 cm", "26 cm", "30 cm")),
        ProductType(
            "dutch oven",
            ("enameled cast iron", "cast iron"),
            ("slow-cooks stews and braises for hours", "bakes crusty no-knead bread",
             "simmers soups and chili on the stove"),
            ("a tight-fitting heavy lid", "a chip-resistant enamel interior",
             "wide loop handles", "self-basting bumps under the lid", "a 5.5 liter capacity"),
            ("pot for slow cooking beef stew", "bake sourdough bread at home"),
            (45, 400)),
        ProductType(
            "saucepan",
            ("stainless steel", "copper-clad stainless steel", "hard-anodized aluminum"),
            ("simmers sauces and gravies", "cooks rice, pasta and grains",
             "heats milk and soup without scorching"),
            ("a glass lid with a steam vent", "a stay-cool handle",
             "measurement markings inside", "an encapsulated base for even heat",
             "dripless pouring rims"),
            ("small pot for making sauce", "pot to cook rice on the stove"),
            (20, 200), ("1.5 liter", "2 liter", "3 liter")),
    )),
    CategorySpec("Bags & Luggage", "BAG", ("Voyager", "Metro", "Nomad", "Transit", "Weekender"), (
        ProductType(
            "backpack",
            ("recycled polyester", "ripstop nylon", "waxed canvas", "water-resistant nylon"),
            ("carries a laptop and gym clothes through the work day",
             "organizes books and gear for class",
             "holds everything for a day of city sightseeing"),
            ("a padded 16-inch laptop sleeve", "water-resistant fabric",
             "a luggage pass-through strap", "padded breathable shoulder straps",
             "a hidden anti-theft pocket"),
            ("bag to carry my laptop to work", "school rucksack with lots of pockets"),
            (35, 180)),
        ProductType(
            "carry-on suitcase",
            ("polycarbonate", "aluminum", "ballistic nylon"),
            ("fits in airplane overhead bins for short trips",
             "packs a week of clothes for business travel",
             "rolls smoothly through airports and train stations"),
            ("four 360-degree spinner wheels", "a TSA-approved combination lock",
             "an expansion zip", "a telescoping handle", "compression straps inside"),
            ("luggage for flights that fits in the overhead bin",
             "rolling case for a weekend trip"),
            (80, 450)),
        ProductType(
            "duffel bag",
            ("heavy canvas", "recycled polyester", "full-grain leather"),
            ("packs clothes for a weekend getaway", "carries gym kit and shoes to training",
             "squeezes into a car boot for road trips"),
            ("a separate shoe compartment", "a detachable shoulder strap",
             "a water-resistant base", "heavy-duty zippers", "a 45 liter capacity"),
            ("weekend bag for a short trip", "gym bag with a compartment for shoes"),
            (30, 250)),
    )),
    CategorySpec("Footwear", "FTW", ("Stride", "Trail", "Cloud", "Urban", "Ridge"), (
        ProductType(
            "running shoes",
            ("engineered mesh", "knit textile", "recycled mesh"),
            ("cushions long road runs and marathon training",
             "keeps feet light on daily jogs", "supports tempo runs and race day"),
            ("a responsive foam midsole", "a breathable upper", "a durable rubber outsole",
             "reflective heel accents", "an 8 mm heel drop"),
            ("shoes for marathon training", "comfortable sneakers for jogging"),
            (60, 200), unit="pair of"),
        ProductType(
            "hiking boots",
            ("full-grain leather", "suede and nylon", "waterproof nubuck"),
            ("keeps feet dry on muddy mountain trails",
             "supports ankles on rocky multi-day hikes", "grips wet rock on steep descents"),
            ("a waterproof breathable membrane", "a lugged rubber outsole",
             "a padded ankle collar", "a protective toe cap", "speed-lace hooks"),
            ("waterproof boots for hiking in the mountains", "footwear for rocky trails"),
            (90, 280), unit="pair of"),
        ProductType(
            "slippers",
            ("sheepskin", "wool felt", "memory foam and fleece"),
            ("keeps feet warm around the house in winter",
             "slips on easily for lazy mornings at home",
             "cushions tired feet after a long day"),
            ("a plush fleece lining", "a non-slip rubber sole", "a memory foam footbed",
             "a machine-washable upper"),
            ("warm indoor shoes for cold floors", "cozy house shoes"),
            (18, 90), unit="pair of"),
    )),
    CategorySpec("Outerwear", "OUT", ("Storm", "Alpine", "Coastal", "Urban", "Peak"), (
        ProductType(
            "rain jacket",
            ("waterproof nylon", "recycled polyester", "three-layer waterproof membrane"),
            ("keeps you dry on rainy commutes",
             "packs into its own pocket for sudden showers",
             "blocks wind and rain on coastal walks"),
            ("fully taped seams", "an adjustable hood", "pit zips for ventilation",
             "a packable design", "a water-repellent finish"),
            ("jacket that keeps me dry in the rain", "lightweight waterproof coat for showers"),
            (50, 320)),
        ProductType(
            "down parka",
            ("goose down with a nylon shell", "recycled down", "synthetic insulation"),
            ("keeps you warm through freezing winter days",
             "blocks the wind chill while waiting for the bus",
             "insulates against snow and sub-zero temperatures"),
            ("700-fill down insulation", "a faux-fur trimmed hood",
             "fleece-lined hand pockets", "a two-way zipper", "a knee-length cut"),
            ("warmest winter coat for freezing weather", "insulated jacket for snow"),
            (120, 600)),
        ProductType(
            "fleece jacket",
            ("recycled polyester fleece", "grid fleece", "sherpa fleece"),
            ("layers under a shell on cool hikes",
             "keeps you cosy on chilly evenings around the campfire",
             "adds warmth on brisk autumn walks"),
            ("a full-length zipper", "zipped hand pockets", "stretch binding at the cuffs",
             "an anti-pill finish"),
            ("warm midlayer for hiking", "cozy zip-up for cool evenings"),
            (30, 150)),
    )),
    CategorySpec("Audio", "AUD", ("Pulse", "Echo", "Studio", "Wave", "Sonic"), (
        ProductType(
            "wireless earbuds",
            ("matte plastic", "aluminum"),
            ("plays music through workouts without falling out",
             "takes clear calls on the go", "shuts out noise on a crowded train"),
            ("active noise cancellation", "IPX5 sweat resistance",
             "a charging case with 24 hours of battery", "touch controls",
             "multipoint Bluetooth pairing"),
            ("earphones for running at the gym", "small wireless earphones for phone calls"),
            (25, 280), unit="pair of"),
        ProductType(
            "noise-cancelling headphones",
            ("protein leather and aluminum", "recycled plastic", "memory foam and steel"),
            ("silences engine noise on long flights",
             "helps you focus in a noisy open-plan office",
             "delivers rich sound for hours of listening"),
            ("adaptive noise cancellation", "30-hour battery life",
             "plush memory foam ear cushions", "a foldable travel design",
             "a built-in microphone"),
            ("headphones to block noise on a plane", "over-ear headset to focus in a loud office"),
            (60, 450), unit="pair of"),
        ProductType(
            "bluetooth speaker",
            ("rugged rubberized plastic", "fabric-wrapped aluminum"),
            ("fills a backyard party with music", "plays music by the pool or on the beach",
             "brings sound along on camping trips"),
            ("an IP67 waterproof rating", "12-hour battery life",
             "stereo pairing with a second speaker", "a built-in carry strap",
             "dual bass radiators"),
            ("portable speaker for the beach", "waterproof speaker for pool parties"),
            (25, 300)),
    )),
    CategorySpec("Computer Accessories", "CMP", ("Flow", "Core", "Office", "Studio", "Pro"), (
        ProductType(
            "mechanical keyboard",
            ("aluminum", "ABS plastic", "steel and PBT plastic"),
            ("makes long typing sessions more comfortable",
             "gives precise, tactile key presses for gaming",
             "connects to a laptop and a desktop at the same time"),
            ("hot-swappable switches", "per-key RGB backlighting", "a compact 75% layout",
             "Bluetooth and USB-C connectivity", "double-shot PBT keycaps"),
            ("clicky keyboard for typing and gaming", "tactile keyboard for programmers"),
            (40, 250)),
        ProductType(
            "wireless mouse",
            ("matte plastic", "recycled plastic", "aluminum"),
            ("reduces wrist strain during long work days",
             "tracks precisely on almost any surface",
             "switches between a laptop and a tablet with one click"),
            ("an ergonomic vertical grip", "silent clicks",
             "a rechargeable battery that lasts 70 days", "a 4000 DPI sensor",
             "programmable side buttons"),
            ("ergonomic mouse for wrist pain", "quiet cordless mouse for my laptop"),
            (15, 120)),
        ProductType(
            "USB-C hub",
            ("aluminum", "anodized aluminum"),
            ("adds HDMI, USB and SD card ports to a thin laptop",
             "connects an external monitor and keyboard through one cable",
             "charges a laptop while connecting peripherals"),
            ("4K HDMI output", "100 W power delivery pass-through", "three USB-A ports",
             "an SD and microSD card reader", "gigabit Ethernet"),
            ("adapter to connect my laptop to a monitor", "more ports for my macbook"),
            (20, 120)),
    )),
    CategorySpec("Home Office", "OFC", ("Studio", "Loft", "Nordic", "Executive", "Balance"), (
        ProductType(
            "standing desk",
            ("solid oak", "bamboo", "laminated birch"),
            ("lets you switch between sitting and standing while you work",
             "rises to standing height at the push of a button",
             "gives a home office a sturdy workspace"),
            ("dual electric motors", "four memory height presets", "anti-collision sensing",
             "a cable management tray", "a 140 x 70 cm desktop"),
            ("desk that goes up and down", "work standing up at home"),
            (200, 900)),
        ProductType(
            "office chair",
            ("breathable mesh", "bonded leather", "upholstered fabric"),
            ("supports your back through long hours at the desk",
             "keeps you comfortable through long gaming sessions",
             "adjusts to your posture in a home office"),
            ("adjustable lumbar support", "4D armrests", "a synchronized tilt mechanism",
             "a headrest", "seat height adjustment"),
            ("chair for back pain when working from home", "ergonomic seat for long work days"),
            (90, 900)),
        ProductType(
            "desk lamp",
            ("aluminum", "brushed brass", "matte steel"),
            ("lights up a desk for late-night reading and study",
             "reduces eye strain during long screen sessions",
             "brightens a work area without glare"),
            ("adjustable color temperature", "a dimmable LED", "a flexible swing arm",
             "a USB charging port in the base", "a touch control panel"),
            ("light for reading at my desk at night", "lamp that doesn't strain my eyes"),
            (20, 180)),
    )),
    CategorySpec("Bedding", "BED", ("Cloud", "Serene", "Haven", "Dream", "Linen House"), (
        ProductType(
            "duvet",
            ("duck down", "hypoallergenic microfiber", "wool"),
            ("keeps you warm on cold winter nights", "stays breathable for hot sleepers",
             "makes a bed feel like a luxury hotel"),
            ("a 300 thread count cotton cover", "baffle-box stitching", "corner ties",
             "machine-washable construction", "an all-season weight"),
            ("warm comforter for winter", "fluffy quilt for my bed"),
            (50, 450), ("single", "double", "queen", "king")),
        ProductType(
            "pillow",
            ("memory foam", "goose down", "buckwheat hulls", "shredded latex"),
            ("supports the neck for side sleepers", "stays cool through the night",
             "eases a stiff neck in the morning"),
            ("a removable bamboo cover", "adjustable fill", "a contoured shape",
             "a cooling gel layer", "a hypoallergenic design"),
            ("pillow for neck pain", "best pillow for side sleeping"),
            (20, 150)),
        ProductType(
            "sheet set",
            ("cotton percale", "washed linen", "bamboo lyocell", "brushed microfiber"),
            ("feels crisp and cool on warm nights", "gets softer with every wash",
             "makes the bed feel fresh and smooth"),
            ("deep pockets that fit thick mattresses",
             "two matching pillowcases",
             "OEKO-TEX certified fabric", "a 400 thread count"),
            ("cool bed sheets for hot summer nights", "soft bed linen set"),
            (35, 300), ("double", "queen", "king")),
    )),
    CategorySpec("Bath", "BTH", ("Spa", "Harbor", "Pure", "Cotton Co.", "Rain"), (
        ProductType(
            "bath towel set",
            ("Turkish cotton", "Egyptian cotton", "bamboo viscose", "waffle-weave cotton"),
            ("dries you off quickly after a shower",
             "wraps you in plush softness after a bath",
             "brings a spa feel to the bathroom"),
            ("thick 600 gsm loops", "a quick-dry weave",
             "two bath towels, two hand towels and two washcloths", "double-stitched hems"),
            ("soft absorbent towels", "fluffy towels for the bathroom"),
            (25, 140)),
        ProductType(
            "shower head",
            ("chrome-plated brass", "stainless steel", "brushed nickel"),
            ("turns a weak trickle into a strong rain shower",
             "saves water without losing pressure", "filters chlorine from shower water"),
            ("five spray settings", "a wide 25 cm rain face", "anti-clog silicone nozzles",
             "a built-in filter cartridge", "a 2-meter stainless hose"),
            ("better water pressure in the shower", "rainfall showerhead"),
            (15, 180)),
        ProductType(
            "bath mat",
            ("memory foam", "diatomaceous earth stone", "cotton chenille", "teak wood"),
            ("soaks up water as you step out of the shower",
             "keeps bathroom floors dry and safe", "dries in minutes between showers"),
            ("a non-slip backing", "a machine-washable cover", "a quick-drying surface",
             "a plush 2 cm pile"),
            ("non-slip mat for the bathroom floor", "absorbent rug by the shower"),
            (10, 70)),
    )),
    CategorySpec("Camping", "CAM", ("Basecamp", "Backcountry", "Ridge", "Wildland", "Summit"), (
        ProductType(
            "tent",
            ("ripstop nylon", "polyester taffeta", "silicone-coated nylon"),
            ("shelters you on backpacking trips", "stands up to wind and rain at a campsite",
             "sets up in minutes for family camping weekends"),
            ("aluminum poles", "a full-coverage rain fly", "two doors with vestibules",
             "taped floor seams", "a 1.8 kg packed weight"),
            ("lightweight shelter for backpacking", "tent for a family camping trip"),
            (70, 600), ("2-person", "4-person", "6-person")),
        ProductType(
            "sleeping bag",
            ("down fill with a nylon shell", "synthetic insulation", "recycled polyester"),
            ("keeps you warm on cold nights in the backcountry",
             "compresses small for backpacking", "handles three-season camping"),
            ("a -5 °C comfort rating", "a draft collar", "a compression stuff sack",
             "a mummy hood", "a two-way zipper"),
            ("stay warm sleeping outside in cold weather", "bag to sleep in while camping"),
            (40, 450)),
        ProductType(
            "camping stove",
            ("stainless steel", "titanium", "aluminum alloy"),
            ("boils water for coffee and dehydrated meals at camp",
             "cooks dinner on a campsite picnic table",
             "fits in a pack for ultralight trips"),
            ("push-button ignition", "a wind guard", "foldable pot supports",
             "a simmer control valve", "an 80 g weight"),
            ("cook food when camping", "small burner for backpacking meals"),
            (25, 180)),
        ProductType(
            "headlamp",
            ("aluminum", "impact-resistant plastic"),
            ("lights the trail on night hikes",
             "keeps your hands free while setting up camp in the dark",
             "helps with repairs under the car hood at night"),
            ("a 400-lumen beam", "a red night-vision mode", "a USB-C rechargeable battery",
             "IPX4 water resistance", "an adjustable head strap"),
            ("light for walking at night on the trail", "hands free flashlight"),
            (15, 90)),
    )),
    CategorySpec("Fitness", "FIT", ("Core", "Flex", "Iron", "Zen", "Motion"), (
        ProductType(
            "yoga mat",
            ("natural rubber", "TPE foam", "cork", "PVC-free foam"),
            ("grips the floor through hot yoga sessions",
             "cushions knees during floor workouts and pilates",
             "rolls up light for the walk to class"),
            ("a non-slip textured surface", "6 mm cushioning", "alignment lines",
             "a carrying strap", "a sweat-resistant finish"),
            ("non slip mat for yoga", "exercise mat for home workouts"),
            (20, 120)),
        ProductType(
            "adjustable dumbbells",
            ("cast iron", "rubber-coated steel", "chrome steel"),
            ("replaces a full rack of weights in a home gym",
             "builds strength with quick weight changes",
             "saves space in a small apartment gym"),
            ("a dial that adjusts from 2 to 24 kg", "a storage tray", "anti-roll handles",
             "a knurled grip"),
            ("weights for strength training at home", "space saving free weights"),
            (60, 450), unit="pair of"),
        ProductType(
            "foam roller",
            ("high-density EVA foam", "EPP foam", "textured foam over a hollow core"),
            ("relieves sore muscles after running",
             "loosens a tight back and legs before a workout",
             "speeds up recovery after leg day"),
            ("a textured massage surface", "a firm hollow core", "a 33 cm length",
             "a vibrating massage mode"),
            ("relieve sore legs after running", "massage roller for muscle recovery"),
            (15, 90)),
        ProductType(
            "resistance bands",
            ("natural latex", "fabric-covered latex", "TPE"),
            ("adds resistance to home and travel workouts",
             "helps with physical therapy and rehab exercises",
             "assists pull-ups while you build strength"),
            ("five resistance levels", "padded handles", "a door anchor", "ankle straps",
             "a mesh carry bag"),
            ("exercise bands for workouts while traveling", "bands for physiotherapy exercises"),
            (10, 50), unit="set of"),
    )),
    CategorySpec("Cycling", "CYC", ("Velo", "Cadence", "Commute", "Sprint", "Gravel"), (
        ProductType(
            "bike helmet",
            ("polycarbonate and EPS foam", "in-mold EPS foam"),
            ("protects your head on daily bike commutes", "keeps you cool on long summer rides",
             "makes you easier to see when riding in traffic at night"),
            ("a rotational impact protection liner", "18 ventilation channels",
             "a rear LED light", "a dial-fit adjustment", "a removable visor"),
            ("head protection for riding to work", "safe cycling helmet"),
            (35, 250)),
        ProductType(
            "bike light set",
            ("aluminum", "silicone and plastic"),
            ("makes you visible to cars on dark evening rides",
             "lights the road ahead on unlit paths",
             "flashes in daylight to catch drivers' attention"),
            ("a 1000-lumen front light", "a bright red rear light", "USB-C charging",
             "tool-free mounts", "a daytime flash mode"),
            ("be seen by cars when cycling at night", "front and rear lights for my bicycle"),
            (15, 140)),
        ProductType(
            "bike lock",
            ("hardened steel", "boron steel", "armored steel cable"),
            ("secures your bike outside the office or station",
             "deters thieves on busy city streets",
             "locks the frame and a wheel to a bike rack"),
            ("a 16 mm hardened shackle", "a frame mounting bracket",
             "an anti-pick disc cylinder", "two keys with a replacement code",
             "a vinyl coating that protects paint"),
            ("stop my bicycle from getting stolen", "strong lock for my bike in the city"),
            (20, 150)),
    )),
    CategorySpec("Garden", "GRD", ("Greenthumb", "Meadow", "Orchard", "Terrace", "Bloom"), (
        ProductType(
            "garden hose",
            ("reinforced rubber", "expandable latex with a fabric cover", "polyurethane"),
            ("waters flower beds and vegetable patches", "washes the car and the patio",
             "reaches every corner of a big backyard"),
            ("a kink-free design", "brass fittings", "a 10-pattern spray nozzle",
             "a 30-meter length", "a wall-mounted reel"),
            ("water plants in my backyard", "hose that doesn't kink"),
            (20, 120)),
        ProductType(
            "pruning shears",
            ("carbon steel", "stainless steel", "forged steel with fibreglass handles"),
            ("trims roses and shrubs with clean cuts", "cuts branches up to 2 cm thick",
             "deadheads flowers and shapes hedges"),
            ("bypass blades", "a safety lock", "cushioned ergonomic grips", "a sap groove",
             "replaceable blades"),
            ("cut back rose bushes", "garden clippers for branches"),
            (12, 70), unit="pair of"),
        ProductType(
            "raised garden bed",
            ("cedar wood", "galvanized steel", "recycled plastic"),
            ("grows vegetables and herbs on a patio",
             "keeps soil warm for an earlier growing season",
             "makes gardening easier on your back"),
            ("an open bottom for drainage", "tool-free assembly", "rot-resistant panels",
             "a 120 x 60 cm planting area"),
            ("grow tomatoes and herbs at home", "elevated planter for vegetables"),
            (40, 300)),
    )),
    CategorySpec("Pet Supplies", "PET", ("Paws", "Cozy Pet", "Tails", "Whisker", "Pack"), (
        ProductType(
            "dog bed",
            ("memory foam", "orthopedic foam", "recycled polyester fill"),
            ("supports older dogs with achy joints", "gives a dog a calm place to curl up",
             "keeps pets warm and off the cold floor"),
            ("a removable washable cover", "a non-slip bottom", "raised bolster sides",
             "a waterproof liner"),
            ("comfortable bed for my old dog", "orthopedic dog bed"),
            (25, 200), ("small", "medium", "large")),
        ProductType(
            "dog leash",
            ("nylon webbing", "climbing rope", "leather"),
            ("keeps dogs under control on city walks",
             "lets you run hands-free with your dog", "trains puppies to walk calmly"),
            ("a padded handle", "reflective stitching", "a strong swivel clip",
             "a built-in poop bag holder", "a 1.8-meter length"),
            ("lead for walking my dog", "hands-free leash for jogging with a dog"),
            (10, 60)),
        ProductType(
            "cat scratching post",
            ("sisal rope", "corrugated cardboard", "carpet and wood"),
            ("saves furniture from cat scratches",
             "gives indoor cats a place to climb and play", "keeps claws healthy"),
            ("a weighted base", "a dangling toy", "a perch at the top",
             "replaceable sisal wrapping"),
            ("stop my cat scratching the sofa", "cat tree for indoor cats"),
            (15, 150)),
        ProductType(
            "pet water fountain",
            ("stainless steel", "ceramic", "BPA-free plastic"),
            ("encourages cats to drink more water", "keeps pet water fresh and filtered",
             "gives pets flowing water all day"),
            ("a carbon filter", "a whisper-quiet pump", "a 2-liter reservoir",
             "a dishwasher-safe bowl"),
            ("get my cat to drink more", "filtered water bowl for pets"),
            (20, 80)),
    )),
    CategorySpec("Tools", "TLS", ("Forge", "Torque", "Builder", "Workshop", "Pro"), (
        ProductType(
            "cordless drill",
            ("rubber-gripped plastic", "die-cast metal and plastic"),
            ("drives screws and drills holes for DIY projects",
             "assembles flat-pack furniture quickly",
             "drills into wood, metal and masonry"),
            ("a 20 V lithium-ion battery", "a two-speed gearbox", "an LED work light",
             "a keyless 13 mm chuck", "a carrying case with bits"),
            ("tool to put up shelves", "drill for home improvement projects"),
            (40, 300)),
        ProductType(
            "tape measure",
            ("ABS plastic and steel", "rubber-armored steel"),
            ("measures rooms, doors and furniture accurately",
             "locks in place for one-person measuring",
             "marks cuts on lumber and drywall"),
            ("an 8-meter blade", "a magnetic hook", "a blade lock",
             "metric and imperial markings", "a belt clip"),
            ("measure a room for furniture", "measuring tape for carpentry"),
            (5, 35)),
        ProductType(
            "tool box",
            ("powder-coated steel", "impact-resistant polypropylene"),
            ("organizes hand tools for the workshop", "carries tools to job sites",
             "keeps screws and bits sorted"),
            ("a removable tray", "metal latches", "small-parts organizers in the lid",
             "a padlock eye"),
            ("storage for my tools", "organizer box for screws and hand tools"),
            (15, 200)),
    )),
    CategorySpec("Personal Care", "PRC", ("Pure", "Glow", "Groom", "Daily", "Luxe"), (
        ProductType(
            "electric toothbrush",
            ("recyclable plastic", "soft-grip plastic"),
            ("removes more plaque than a manual brush",
             "protects sensitive gums with a gentle mode",
             "tells you when you have brushed long enough"),
            ("a two-minute timer", "a pressure sensor", "a travel case",
             "three cleaning modes", "a battery that lasts three weeks"),
            ("toothbrush for whiter teeth", "sonic toothbrush for sensitive gums"),
            (20, 200)),
        ProductType(
            "hair dryer",
            ("ceramic", "tourmaline ceramic", "lightweight plastic"),
            ("dries thick hair fast without frizz", "styles smooth blowouts at home",
             "folds away for travel"),
            ("ionic technology", "three heat settings", "a cool shot button",
             "a concentrator nozzle", "a diffuser attachment"),
            ("blow dryer that reduces frizz", "dry my hair faster"),
            (20, 400)),
        ProductType(
            "beard trimmer",
            ("stainless steel", "titanium-coated steel"),
            ("keeps a beard neat between barber visits", "shapes stubble to an exact length",
             "trims on the go with a long-lasting battery"),
            ("20 length settings", "a waterproof body", "a USB charging stand",
             "self-sharpening blades", "a 90-minute battery"),
            ("groom my beard at home", "stubble trimmer"),
            (20, 130)),
    )),
    CategorySpec("Cleaning", "CLN", ("Spotless", "Fresh", "Swift", "Home", "Pro"), (
        ProductType(
            "robot vacuum",
            ("matte white plastic", "tempered glass and plastic"),
            ("vacuums floors automatically while you are out",
             "picks up pet hair from carpets and hard floors",
             "empties itself into a base station"),
            ("lidar room mapping", "app scheduling", "a self-emptying base",
             "a 2-hour runtime", "edge-cleaning brushes"),
            ("vacuum that cleans by itself", "automatic floor cleaner for pet hair"),
            (150, 900)),
        ProductType(
            "cordless stick vacuum",
            ("lightweight aluminum", "recycled plastic"),
            ("cleans stairs and car seats without a cord",
             "turns into a handheld for quick spills", "pulls fine dust from deep carpet"),
            ("a HEPA filter", "a 60-minute battery", "a motorized brush head",
             "a wall-mounted charging dock", "a crevice tool"),
            ("lightweight vacuum without a cord", "vacuum for quick cleanups"),
            (90, 600)),
        ProductType(
            "spray mop",
            ("aluminum with microfiber pads", "steel with microfiber pads"),
            ("cleans hardwood and tile floors without a bucket",
             "sprays cleaner right where you need it",
             "wipes up kitchen spills in seconds"),
            ("a refillable 400 ml tank", "washable microfiber pads",
             "a 360-degree swivel head", "a trigger spray"),
            ("mop for wood floors", "clean the kitchen floor quickly"),
            (15, 60)),
    )),
    CategorySpec("Smart Home", "SMH", ("Link", "Aura", "Sense", "Beacon", "Home"), (
        ProductType(
            "smart plug",
            ("white polycarbonate", "fire-resistant plastic"),
            ("turns lamps and appliances on and off by voice",
             "switches lights on while you are away",
             "tracks how much energy a device uses"),
            ("Wi-Fi without a hub", "energy monitoring", "voice assistant support",
             "a compact body that leaves the second outlet free"),
            ("control my lamp from my phone", "timer plug for lights"),
            (10, 40)),
        ProductType(
            "video doorbell",
            ("weatherproof plastic", "brushed aluminum"),
            ("shows who is at the door on your phone",
             "records package deliveries and visitors",
             "lets you talk to visitors from anywhere"),
            ("1080p HD video", "two-way audio", "night vision", "motion alerts",
             "a rechargeable battery"),
            ("see who rings the doorbell", "camera for my front door"),
            (50, 250)),
        ProductType(
            "smart thermostat",
            ("glass and steel", "brushed aluminum", "white polycarbonate"),
            ("learns your schedule to cut heating bills",
             "adjusts the temperature from your phone",
             "warms the house before you get home"),
            ("a color touchscreen", "geofencing", "monthly energy reports",
             "remote room sensors"),
            ("save money on heating", "control heating from my phone"),
            (80, 280)),
    )),
    CategorySpec("Stationery", "STN", ("Scribe", "Atelier", "Studio", "Daily", "Field"), (
        ProductType(
            "notebook",
            ("acid-free paper", "recycled paper", "leather-bound paper"),
            ("captures notes in meetings and lectures",
             "works as a bullet journal for daily planning",
             "holds sketches and ideas on the go"),
            ("120 gsm dotted pages", "a lay-flat binding", "an elastic closure",
             "a ribbon bookmark", "numbered pages"),
            ("journal for bullet journaling", "paper that fountain pen ink won't bleed through"),
            (6, 40)),
        ProductType(
            "fountain pen",
            ("brass", "resin", "aluminum"),
            ("makes handwriting smooth and expressive",
             "fills from bottled ink for everyday writing",
             "makes a thoughtful gift for a writer"),
            ("a fine stainless steel nib", "an ink converter", "a gift box", "a screw cap"),
            ("nice pen for calligraphy", "gift pen for a writer"),
            (15, 250)),
        ProductType(
            "weekly planner",
            ("linen-covered paper", "vegan leather", "recycled paper"),
            ("organizes a busy week at a glance", "tracks goals and habits through the year",
             "keeps appointments and deadlines in one place"),
            ("undated weekly spreads", "monthly calendars", "a pocket for receipts",
             "habit tracker pages"),
            ("organizer to keep track of appointments", "agenda book for the year"),
            (10, 45)),
    )),
)
# fmt: on

#: Invented brand names that start product names.
BRANDS: tuple[str, ...] = (
    "Alder & Finch", "Bramblewood", "Kestrel", "Lumen & Co.", "Oakridge", "Harbor Lane",
    "Fjordline", "Cinder", "Maple Row", "Tidewell", "Granite Peak", "Juniper", "Aster",
    "Copperleaf", "Wrenfield", "Solstice", "Birchmoor", "Marlow", "Quillon", "Everstead",
)

#: Colors named in descriptions.
COLORS: tuple[str, ...] = (
    "slate blue", "charcoal", "forest green", "sand", "matte black", "white", "terracotta",
    "navy", "sage", "stone grey", "burgundy", "ochre",
)


def find_type(type_name: str) -> tuple[CategorySpec, ProductType]:
    """The category and product type called ``type_name`` (as in ``attributes["type"]``).

    Raises ``KeyError`` for an unknown type name.
    """
    for category in CATEGORIES:
        for product_type in category.types:
            if product_type.name == type_name:
                return category, product_type
    raise KeyError(f"no product type named {type_name!r}")


def labelled_queries() -> Iterator[tuple[str, str, str]]:
    """Every shopper query in the table as ``(query, category, type)``.

    A generated product is relevant to a query when ``attributes["type"]`` equals the type.
    """
    for category in CATEGORIES:
        for product_type in category.types:
            for query in product_type.queries:
                yield query, category.name, product_type.name

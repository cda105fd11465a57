"""A hand-written labelled retrieval set: 200 short conversations and 60 queries.

How it was built. Every conversation was written by hand as a plausible exchange with
an AI assistant (two to four messages, user first, one to three sentences each) on
everyday topics: cooking, gardening, programming, money, travel, health, home repair,
pets, music, photography, cars, parenting, writing, homework and job hunting.

* 60 *targets*, each about one specific thing, and one query for each.
* 140 *distractors*. The first 60 are hard negatives, one written against each target:
  they reuse its most salient words in another sense or for another problem (sourdough
  starter / a car's starter motor, list comprehension / a child's reading
  comprehension, brined turkey / brine shrimp, ...). Of the other 80, 20 are near
  neighbours of the paraphrase targets, the same domain but another problem (a laptop
  that stops charging at 80 % beside one whose battery drains while idle), written so
  that a model of meaning has something to confuse; 60 are ordinary chats on unrelated
  topics.

Queries come in three kinds, twenty of each:

* ``keyword``: two to four words that occur verbatim in the target (what someone
  remembering the words would type); in 16 of them all the words are in one message, in
  4 they are spread over two (full text matches message by message, so it misses those).
* ``word_form``: the same content words in other inflections or derivations ("brined
  the turkey" -> "brining turkeys"); no content word of the query occurs verbatim in
  the target, and at least one shares its first four letters with a target word.
* ``paraphrase``: the same meaning in other words: no content word of the query, nor
  its first five letters, occurs in the target's messages or title.

Titles were chosen like a chat app's auto-titles, specific but worded apart from the
word_form and paraphrase queries, so that a title match cannot make those trivial.
tests/test_retrieval_quality.py checks these properties and scores full-text, semantic
and hybrid search on the set. Plain literals only: no randomness, no real names.
"""

from __future__ import annotations

# (unique title, messages alternating user / assistant, the user first)
TARGETS: list[tuple[str, list[str]]] = [
    # ------------------------------------------------------------ targets of keyword queries
    (
        "Levain rising slowly",
        [
            "My sourdough starter has barely risen in three days. I feed it rye flour and "
            "water every morning and keep it at room temperature.",
            "A cool kitchen slows the yeast a lot. Try feeding it twice a day and keeping the "
            "jar somewhere around 25°C, like on top of the fridge.",
            "It smells a bit like nail polish remover, is that bad?",
            "That acetone smell just means it is hungry. Feed it more often and it should "
            "settle into a yeasty, tangy aroma.",
        ],
    ),
    (
        "Flattening a matrix in one line",
        [
            "How do I flatten a list of lists in Python with a list comprehension? I keep "
            "getting the nested loop order wrong.",
            "Write the for clauses in the same order as nested for statements: "
            "[x for row in matrix for x in row]. The outer one comes first.",
        ],
    ),
    (
        "Tidying up a feature branch history",
        [
            "Before opening a pull request I want to squash commits on my feature branch "
            "into one. Is an interactive rebase the right tool?",
            "Yes: run git rebase -i main, then mark every commit except the first as squash "
            "or fixup. Afterwards you will need to force push the branch.",
        ],
    ),
    (
        "Order totals coming out doubled",
        [
            "My SQL report does a LEFT JOIN from customers to orders and payments, and now "
            "the totals are doubled. Why am I getting duplicate rows?",
            "Joining two one-to-many tables at once multiplies the results: each order is "
            "repeated for every payment. Aggregate each child table in a subquery first, "
            "then join the summaries.",
        ],
    ),
    (
        "Flask app unreachable from the browser",
        [
            "I started a web app inside a Docker container but can't reach it on localhost "
            "from my browser. The log says it is listening on port 5000.",
            "Two usual causes: the port mapping is missing, so run it with -p 5000:5000, "
            "and the server is bound to 127.0.0.1 inside the container. Start it on 0.0.0.0.",
        ],
    ),
    (
        "Self-employed retirement savings",
        [
            "I'm self-employed and want to open a Roth IRA. What is the contribution limit, "
            "and does my income matter?",
            "Roth IRA contributions are capped each year and phase out above certain income "
            "levels, so check the current IRS figures for your filing status. If you earn too "
            "much, a backdoor conversion from a traditional IRA is the usual workaround.",
        ],
    ),
    (
        "Black patches on my tomatoes",
        [
            "My tomatoes have dark sunken patches on the bottom. A neighbour said it's "
            "blossom end rot and that I need to add calcium.",
            "It is usually caused by uneven watering rather than a lack of calcium in the "
            "soil. Mulch the bed and water deeply on a regular schedule, and the new fruit "
            "should be fine.",
        ],
    ),
    (
        "Walks with the new dog are a struggle",
        [
            "Our eight-month-old puppy pulls so hard on the leash that walks are miserable. "
            "Would a harness help?",
            "A front-clip harness reduces pulling, but the training matters more: stop "
            "walking the moment the leash goes tight and only move on when it slackens.",
        ],
    ),
    (
        "F shape sounds muffled on acoustic",
        [
            "Every time I play the F barre chord on my acoustic guitar, the B string is "
            "buzzing. Am I not pressing hard enough?",
            "Pressing harder rarely fixes it. Roll your index finger slightly onto its bony "
            "edge and keep it just behind the fret; the noise usually comes from a crease in "
            "the finger landing on a string.",
        ],
    ),
    (
        "Silky water in daylight",
        [
            "I want that silky look on a waterfall, but even at f/22 the long exposure is "
            "blown out in daylight. Do I need an ND filter?",
            "Yes, a 6- or 10-stop ND filter lets you use shutter speeds of a second or more "
            "in daylight. Put the camera on a tripod and use the self-timer to avoid shake.",
        ],
    ),
    (
        "Noise when stopping at lights",
        [
            "My car's brake pads squeal every time I stop at low speed. The garage says they "
            "still have plenty of material.",
            "Pads with good thickness often just vibrate: anti-squeal shims or a thin layer "
            "of grease on their backs usually cure it. Have the discs checked for glazing too.",
        ],
    ),
    (
        "Toddler up at five",
        [
            "My 18-month-old suddenly refuses her afternoon nap and wakes at 5am. Is this a "
            "sleep regression?",
            "Eighteen months is a classic regression age, often tied to a push for "
            "independence. Keep the nap on offer at the same time each day; most toddlers "
            "settle back within a few weeks.",
        ],
    ),
    (
        "Moving from classroom to design",
        [
            "I've taught high school for eight years and I'm applying for junior UX roles. "
            "How do I write a cover letter for a career change without sounding desperate?",
            "Lead with something specific you designed for learners, then connect classroom "
            "skills such as observing students to user research. Keep it to three short "
            "paragraphs and don't apologise for the switch.",
        ],
    ),
    (
        "Homework: no real roots",
        [
            "My math homework asks when a quadratic has no real solutions. The teacher "
            "mentioned the discriminant being negative but I don't get why.",
            "The discriminant is b² − 4ac, the part under the square root in the formula. If "
            "it is below zero you would need the square root of a number less than zero, "
            "which has no real value, so there are no real roots.",
        ],
    ),
    (
        "Getting around by bullet train",
        [
            "We're spending two weeks in Japan: Tokyo, Kyoto, Hiroshima and back. Is the "
            "Japan Rail Pass still worth it for the shinkansen?",
            "After the big price rise, the pass only pays off with several long rides in a "
            "short period. For that route, buying individual tickets is often cheaper now.",
        ],
    ),
    (
        "Stabbing pain on the first steps",
        [
            "I get a stabbing pain in my heel for the first few steps each morning, "
            "especially after long runs. Could it be plantar fasciitis?",
            "That pattern is typical of it. Calf stretches, rolling your foot over a frozen "
            "bottle and cutting back for a while usually help; see a physio if it lasts more "
            "than a few weeks.",
        ],
    ),
    (
        "Single-lever mixer won't stop",
        [
            "Our kitchen faucet keeps dripping even when it's fully closed. Do I need a new "
            "cartridge?",
            "Single-lever mixers usually drip because the ceramic cartridge is worn. Shut off "
            "the water under the sink, take the handle off and swap the cartridge for an "
            "identical one from the same brand.",
        ],
    ),
    (
        "Second act dragging",
        [
            "Beta readers say the middle of my novel drags. My pacing is fine in the first "
            "act but the story loses steam around chapter twelve.",
            "A sagging middle usually means the protagonist has stopped making choices. Add a "
            "midpoint reversal that raises the stakes, and cut scenes that only repeat what "
            "the reader already knows.",
        ],
    ),
    (
        "Accidents on the bathroom mat",
        [
            "Our cat has started peeing outside the litter box, always on the bathroom mat. "
            "Nothing else has changed at home.",
            "Rule out a urinary infection with the vet first, since that's a common cause. "
            "Then try an extra box in a quiet spot and an unscented litter, and clean the "
            "mat with an enzyme cleaner.",
        ],
    ),
    (
        "Portraits look orange after editing",
        [
            "My portraits look orange after editing in Lightroom. Is there a preset that "
            "fixes skin tones?",
            "Presets rarely fix them across different lighting. Use the HSL panel to lower "
            "the orange saturation slightly and raise its luminance, then save that as your "
            "own preset.",
        ],
    ),
    # ------------------------------------------------------------ targets of word_form queries
    (
        "Climbers cut back too late",
        [
            "I pruned my climbing roses in late spring and now several canes have blackened "
            "tips. Did I do it at the wrong time?",
            "Cutting back after growth starts stresses the plant and invites dieback, which "
            "is what blackened canes usually show. Remove them to healthy wood and prune in "
            "late winter next year.",
        ],
    ),
    (
        "Holiday bird came out too strong",
        [
            "Last year I brined the turkey overnight and it came out far too salty. How long "
            "should it sit in the brine?",
            "For a 12-pound bird, 12 to 18 hours in a 5 percent salt solution is plenty. "
            "Rinse it afterwards and don't add salt to the rub.",
        ],
    ),
    (
        "Timing helper reports the wrong name",
        [
            "I wrote a timing decorator in Python, but every decorated function now reports "
            "its name as 'wrapper'. How do I keep the original name?",
            "Apply functools.wraps to the inner function: put @functools.wraps(func) above "
            "def wrapper. It copies the name, docstring and other metadata across.",
        ],
    ),
    (
        "Regretting a hasty git -D",
        [
            "I deleted a local branch with git branch -D before merging it. Is the work gone?",
            "Not yet: run git reflog to find the last commit of that branch, then "
            "git branch old-work <hash> to recreate it. Unreachable commits are kept for a "
            "few weeks before garbage collection.",
        ],
    ),
    (
        "Report takes eight seconds to load",
        [
            "A query filtering orders by created date takes eight seconds on a million rows. "
            "Would adding an index help?",
            "Yes, an index on created_at lets the database seek to the date range instead of "
            "scanning every row. Check the plan with EXPLAIN before and after to confirm it "
            "is used.",
        ],
    ),
    (
        "Go service container is 1.2 GB",
        [
            "My Docker image for a small Go service is 1.2 GB. How can I shrink it?",
            "Use a multi-stage build: compile in a golang image, then copy just the binary "
            "into a distroless or scratch image. That usually brings it under 20 MB.",
        ],
    ),
    (
        "Three cards at 24 percent",
        [
            "I owe money on three credit cards at around 24 percent interest. Should I "
            "consolidate it into a personal loan?",
            "Consolidating makes sense if the loan's rate is clearly lower and you stop "
            "using the cards afterwards. Also compare a zero-percent balance transfer card, "
            "watching the transfer fee.",
        ],
    ),
    (
        "Stuck in Frankfurt",
        [
            "We missed our connecting flight in Frankfurt because the first leg landed two "
            "hours late. Are we owed compensation?",
            "Under EU rules you can claim compensation if you reached your destination more "
            "than three hours late and the airline was at fault. Keep your boarding passes "
            "and the rebooking confirmation.",
        ],
    ),
    (
        "Still stiff after a month",
        [
            "I've been stretching my hamstrings every day for a month, but they still feel "
            "tight when I bend over.",
            "Short holds often aren't enough; try 30 to 60 seconds per stretch and add "
            "strengthening like Romanian deadlifts. Stiffness can also come from the lower "
            "back, so mobility work there may help.",
        ],
    ),
    (
        "Shower joints crumbling",
        [
            "The grout between the tiles in our shower is cracking and coming out in pieces. "
            "Do I need to redo all of it?",
            "Only the damaged joints need attention: rake out the loose grout with a grout "
            "saw, clean the gaps and regrout just those sections. Seal it once it has cured.",
        ],
    ),
    (
        "African grey stressed",
        [
            "My African grey has started plucking her chest feathers. The vet found nothing "
            "medically wrong.",
            "Plucking without a medical cause is often boredom or stress. Add foraging toys, "
            "more time out of the cage and a consistent sleep schedule of 10 to 12 hours.",
        ],
    ),
    (
        "Too high for my voice",
        [
            "The song I'm learning is too high for my voice. How do I transpose it down to a "
            "lower key?",
            "Move every chord down by the same number of semitones, for example from E to C "
            "is four. A capo won't help going down, so you'll need to rewrite the chords or "
            "retune the guitar.",
        ],
    ),
    (
        "Church pictures too dark",
        [
            "The photos I took at my cousin's wedding came out underexposed. The church was "
            "very dim.",
            "Raw files let you recover about two stops in editing. Next time raise the ISO to "
            "3200 or more and use a fast prime lens at f/1.8 rather than slowing the shutter.",
        ],
    ),
    (
        "Temperature gauge climbing in traffic",
        [
            "My engine overheats when I'm stuck in traffic but is fine on the motorway. The "
            "radiator fan never seems to turn on.",
            "Moving air cools the radiator at speed, so a dead fan only shows up in traffic. "
            "Check its fuse and relay first, then the temperature switch that triggers it.",
        ],
    ),
    (
        "Four-year-old and dinner fights",
        [
            "My four-year-old refuses to eat vegetables, even ones he liked last year. Dinner "
            "has become a fight every night.",
            "Keep serving small portions alongside foods he likes without pressure; it can "
            "take 10 to 15 exposures before a child accepts a food. Letting him help wash or "
            "chop vegetables also makes him more curious.",
        ],
    ),
    (
        "Flash fiction timeline slips",
        [
            "In my short story I keep switching tenses between past and present without "
            "noticing. How do I catch it?",
            "Pick one time frame for the narration and read the draft aloud; the slips are "
            "easier to hear than see. Searching for common verbs like 'is' and 'was' also "
            "helps you spot them.",
        ],
    ),
    (
        "Algebra homework with letters",
        [
            "My algebra homework asks me to simplify a fraction with variables in the "
            "numerator and denominator. I don't know where to start.",
            "Factor the numerator and the denominator completely, then cancel any factor "
            "that appears in both. For example, (x² − 9)/(x − 3) becomes x + 3.",
        ],
    ),
    (
        "Turned down after the last round",
        [
            "I was rejected after the final interview for a job I really wanted. Should I "
            "ask for feedback?",
            "Yes, a short, gracious email asking for one or two things you could improve is "
            "fine. Many companies won't share details, but it keeps the door open.",
        ],
    ),
    (
        "Sugar syrup went wrong",
        [
            "My caramel crystallized halfway through and turned into a grainy lump. What did "
            "I do wrong?",
            "Stirring, or stray sugar crystals on the pan sides, can seed crystallization. "
            "Add a spoonful of glucose syrup or a squeeze of lemon juice, and brush the sides "
            "down with water.",
        ],
    ),
    (
        "First long race in April",
        [
            "I'm training for my first marathon in April. How many miles a week should I be "
            "running by the end?",
            "Most beginner plans peak around 35 to 45 miles a week with a long run of 20 "
            "miles about three weeks before race day. Build up by no more than about ten "
            "percent each week.",
        ],
    ),
    # ------------------------------------------------------------ targets of paraphrase queries
    (
        "Power draining overnight",
        [
            "My laptop battery drains really fast even when it's idle with the lid closed. "
            "It was at 80 percent last night and dead this morning.",
            "That usually means it isn't actually sleeping: some app or a USB device keeps "
            "waking it. Check the power report for wake sources, and switch the sleep mode "
            "to hibernate overnight.",
        ],
    ),
    (
        "Potted fig looking sickly",
        [
            "The leaves on my fiddle leaf fig are turning yellow and dropping. I water it "
            "twice a week.",
            "Twice a week is probably too often; yellowing plus dropping usually means soggy "
            "roots. Let the top few centimetres of soil dry out before watering, and make "
            "sure the pot drains.",
        ],
    ),
    (
        "Awake until 3am",
        [
            "I lie awake for hours after going to bed, even though I'm exhausted. My mind "
            "just won't switch off.",
            "Try getting up after 20 minutes awake and doing something dull in dim light "
            "until you feel sleepy. Keeping the same wake time every day, even weekends, "
            "matters more than when you go to bed.",
        ],
    ),
    (
        "Backing out my last change",
        [
            "I made a commit a minute ago but realised I committed to the wrong branch. How "
            "do I undo it without losing my work?",
            "Run git reset --soft HEAD~1: the commit disappears but your changes stay "
            "staged. Then switch to the right branch and commit there.",
        ],
    ),
    (
        "Spill at the dinner party",
        [
            "A guest knocked over a glass of red wine on our cream carpet. What's the best "
            "way to get the stain out?",
            "Blot, don't rub, then pour on a little cold water and continue blotting. A mix "
            "of dish soap and white vinegar, or an oxygen-based cleaner, lifts most of what "
            "remains.",
        ],
    ),
    (
        "Steering wheel off-centre",
        [
            "My car pulls to the right on the highway even though the tyres are new. Is it "
            "the alignment?",
            "New tyres plus pulling usually points to alignment, though uneven pressures or "
            "a sticking brake caliper can do it too. Check the pressures first, then have "
            "the tracking set.",
        ],
    ),
    (
        "Header row as dictionary keys",
        [
            "How do I load a CSV file into a list of dictionaries in Python, using the "
            "header row as keys?",
            "Use csv.DictReader: with open(path, newline='') as f: rows = "
            "list(csv.DictReader(f)). Each row becomes a dict keyed by the header.",
        ],
    ),
    (
        "Saving for our first flat",
        [
            "My partner and I want to save a 10 percent deposit for a flat within three "
            "years. How should we split our income to get there?",
            "Work out the monthly target, then automate transfers into a separate "
            "high-interest account on payday. Many couples contribute in proportion to their "
            "salaries rather than equally.",
        ],
    ),
    (
        "Wrecked after flying east",
        [
            "I just flew from London to Tokyo and I'm wide awake at 3am and exhausted by "
            "lunchtime. How do I adjust faster?",
            "Get bright daylight in the morning and avoid it in the late afternoon for the "
            "first few days. A small dose of melatonin at local bedtime can also help shift "
            "your body clock.",
        ],
    ),
    (
        "Basmati comes out wrong",
        [
            "Every time I cook basmati rice it comes out sticky and mushy. I use two cups of "
            "water per cup of rice.",
            "That's too much water for basmati. Rinse it until the water runs clear, use "
            "about 1.5 cups per cup, and let it rest covered for ten minutes after cooking.",
        ],
    ),
    (
        "Hiding under the bed at New Year",
        [
            "Every New Year our dog shakes and hides under the bed when the fireworks start. "
            "What can we do?",
            "Set up a den in a quiet room with the curtains closed and some background music "
            "before it starts. A vet can prescribe an anti-anxiety medication for the worst "
            "nights, and desensitisation with recorded sounds helps over months.",
        ],
    ),
    (
        "Sight-reading from scratch",
        [
            "I've played piano by ear for years but I want to learn to read sheet music. "
            "Where do I start?",
            "Start with the treble and bass clef notes using a mnemonic, then sight-read very "
            "simple pieces daily. Ten minutes of graded exercises every day beats an hour "
            "once a week.",
        ],
    ),
    (
        "Winter heating bills up",
        [
            "Our old sash windows let in a cold draught all winter and the heating bills are "
            "huge. Replacing them isn't affordable.",
            "Brush draught-excluder strips fitted to the sashes make a big difference, and "
            "secondary glazing film is a cheap seasonal option. Heavy lined curtains help at "
            "night.",
        ],
    ),
    (
        "Limits for our fifteen-year-old",
        [
            "Our fifteen-year-old is on her phone until 2am and her grades are slipping. How "
            "do we set limits without a war?",
            "Agree the rules together, such as phones charging in the kitchen overnight, and "
            "apply them to the adults too. Explaining the sleep reasons works better than "
            "just confiscating.",
        ],
    ),
    (
        "City shots come out soft",
        [
            "My night photos of the city are always blurry, even with image stabilisation "
            "on. I'm shooting handheld at 1/8 second.",
            "At 1/8 second, a little hand movement still smears detail. Brace against a "
            "wall, shoot a burst and keep the sharpest frame, or raise the ISO to get to "
            "1/30.",
        ],
    ),
    (
        "Counter-offer email",
        [
            "I got a job offer, but the salary is 10 percent below what I expected. How do "
            "I negotiate without losing the offer?",
            "Thank them, express enthusiasm, then give a specific number backed by market "
            "data. Most employers expect negotiation, and a polite counter rarely causes an "
            "offer to be withdrawn.",
        ],
    ),
    (
        "Staring at an empty document",
        [
            "I've been staring at a blank page for weeks and nothing comes out. I used to "
            "write every day.",
            "Lower the bar: set a timer for ten minutes and write badly on purpose. Many "
            "writers find that a messy first draft unblocks them faster than waiting for "
            "inspiration.",
        ],
    ),
    (
        "Dice question from class",
        [
            "For my math class: what's the probability that two dice add up to seven?",
            "There are 36 equally likely outcomes and six of them sum to seven: 1+6, 2+5, "
            "3+4 and the reverses. So the probability is 6/36, or 1/6.",
        ],
    ),
    (
        "Ache after desk days",
        [
            "My lower back aches after eight hours sitting at my desk. Is my chair the problem?",
            "Chair height matters: feet flat, hips slightly above knees, and the screen at "
            "eye level. Getting up every half hour for a short walk helps more than any chair.",
        ],
    ),
    (
        "Compose stack stuck restarting",
        [
            "My Docker container keeps restarting every few seconds. docker ps shows "
            "Restarting (1).",
            "Exit code 1 means the main process exits with an error at startup. Run docker "
            "logs on it to see the error; a missing environment variable or a bad config "
            "path is the usual cause.",
        ],
    ),
]

# One hard negative per target, in the same order: the target's salient words, another
# subject.
HARD_NEGATIVES: list[tuple[str, list[str]]] = [
    # ------------------------------------------------------------ against the keyword targets
    (
        "Car won't crank on cold mornings",
        [
            "My car just clicks when I turn the key on cold mornings. The battery tested "
            "fine, so could it be the starter motor?",
            "A single click with a healthy battery often points to a worn starter solenoid or "
            "motor. Tapping the starter gently while someone turns the key is an old "
            "diagnostic trick.",
        ],
    ),
    (
        "Second grader struggling with stories",
        [
            "My seven-year-old can read the words in a story but can't tell me what "
            "happened afterwards. How do I help her reading comprehension?",
            "Pause after each page and ask her to predict what comes next or retell it in "
            "her own words. Short, frequent check-ins build comprehension better than "
            "quizzes at the end.",
        ],
    ),
    (
        "Roasting butternut",
        [
            "What temperature should I roast butternut squash at, and do I need to peel it?",
            "Roast cubes at 200°C for about 30 minutes; peeling is optional if the skin is "
            "thin. Toss them in oil and a pinch of smoked paprika first.",
            "Can I squash the leftovers into a soup?",
            "Absolutely, blend them with stock and a little cream for a quick soup.",
        ],
    ),
    (
        "Wobbly dining chair",
        [
            "One of our dining chairs wobbles because the joint where the left leg meets the "
            "seat rail has come loose. Should I just add screws?",
            "Screws rarely hold in a failed joint. Knock it apart, scrape off the old glue, "
            "and re-glue it with wood glue and a clamp overnight.",
        ],
    ),
    (
        "Shipping furniture overseas",
        [
            "We're moving abroad and a removal company quoted a shared shipping container. "
            "How long does it usually take from port to port?",
            "Sea freight in a shared container typically takes six to ten weeks door to "
            "door, including customs at the destination port. Ask whether the quote covers "
            "unloading and storage fees.",
        ],
    ),
    (
        "Leaving gift for a coworker",
        [
            "Our team is collecting money for a coworker's leaving gift. Is there a polite "
            "way to suggest a contribution limit so nobody feels pressured?",
            "Suggest a small range rather than a fixed amount, and let people give "
            "anonymously through a shared envelope. Saying that any amount is welcome keeps "
            "it relaxed.",
        ],
    ),
    (
        "Soft wood under the window",
        [
            "The wooden sill under our bedroom window feels soft and crumbly at the end near "
            "the wall. Is that rot?",
            "Soft, crumbly wood is almost certainly wet rot. Cut back to sound timber, treat "
            "it with a wood hardener and fill the rest with an epoxy filler before repainting.",
        ],
    ),
    (
        "Car seat straps for a toddler",
        [
            "How tight should the harness straps be on my toddler's car seat? She keeps "
            "wriggling her arms out.",
            "You should not be able to pinch any slack in the strap at her collarbone, and "
            "the chest clip belongs at armpit level. Wriggling out usually means the straps "
            "are too loose.",
        ],
    ),
    (
        "Fridge noisy at night",
        [
            "Our fridge started buzzing loudly at night and the back feels hot. Should I be "
            "worried?",
            "A loud buzz with a hot back often means the condenser fan is blocked or the "
            "coils are clogged with dust. Unplug it, vacuum the coils and check the fan spins "
            "freely.",
        ],
    ),
    (
        "Water jug tastes odd",
        [
            "How often should I change the cartridge in our water filter jug? The water has "
            "started tasting odd.",
            "Most jug cartridges last about a month or 150 litres. A stale taste is a good "
            "sign it's overdue.",
        ],
    ),
    (
        "Practice pad for drumming",
        [
            "I'm learning drums in a flat. Are rubber practice pads quiet enough to use in "
            "the evening?",
            "A practice pad is much quieter than a kit, roughly as loud as clapping, so "
            "evenings are usually fine. Put it on a folded towel to cut the thud through the "
            "floor.",
        ],
    ),
    (
        "Statistics homework on residuals",
        [
            "For my statistics homework I ran a linear regression and the residuals form a "
            "curve. What does that mean?",
            "A curved residual pattern means a straight line is the wrong model. Try adding "
            "a squared term or transforming one of the variables, then check the residual "
            "plot again.",
        ],
    ),
    (
        "Winter crop for empty beds",
        [
            "Which cover crop should I sow on my empty vegetable beds in October? I'd like to "
            "improve the soil for spring.",
            "Winter rye or crimson clover both work well sown in October. Cut them down a "
            "few weeks before planting so they have time to break down.",
        ],
    ),
    (
        "Scanning old film",
        [
            "I found boxes of my parents' 35mm film negatives. What's the easiest way to "
            "scan them at home?",
            "A camera with a macro lens and a light pad gives better results than most "
            "flatbed scanners. Invert the colours in editing software afterwards, since "
            "colour negative film has an orange mask.",
        ],
    ),
    (
        "Towel rail came off the wall",
        [
            "The heated towel rail in our bathroom is pulling away from the tiles. How do I "
            "fix it without cracking them?",
            "Remove the rail, drill out the old plugs with a tile bit, and fit longer "
            "fixings. Tape over the tile before drilling to stop the bit skating.",
        ],
    ),
    (
        "Broken heel on my boots",
        [
            "The heel on my favourite leather boots snapped off. Is that worth taking to a "
            "cobbler?",
            "Yes, a cobbler can replace a heel cheaply, usually within a day. Bring the "
            "broken piece along so they can match the height.",
        ],
    ),
    (
        "Printer ink running out",
        [
            "Our inkjet printer says the ink cartridge is empty after only fifty pages. Are "
            "third-party cartridges safe to use?",
            "Most compatible cartridges work fine, though some printers complain about them "
            "after firmware updates. Printing a nozzle check first tells you whether it's "
            "really empty or just clogged.",
        ],
    ),
    (
        "Shelf bowing in the closet",
        [
            "The long shelf in our closet is sagging in the middle under the weight of "
            "books. How do I stop it bending further?",
            "Add a support bracket at the midpoint or screw a strip of hardwood along the "
            "front edge to stiffen it. For long spans, a thicker board helps too.",
        ],
    ),
    (
        "Beach clean-up day",
        [
            "I'm organising a litter pick on our local beach this weekend. What do "
            "volunteers need to bring?",
            "Gloves, grabbers, sturdy bags and a bucket for sharp items. Ask the council "
            "whether they'll collect the full bags, and bring sun cream and water.",
        ],
    ),
    (
        "Dry hands every winter",
        [
            "My skin gets dry and flaky every winter, especially on my hands. What routine "
            "would help?",
            "Use a fragrance-free cream right after washing while your skin is still damp, "
            "and wear gloves outdoors. A humidifier in the bedroom helps too.",
        ],
    ),
    # ------------------------------------------------------------ against the word_form targets
    (
        "Walking aid after surgery",
        [
            "My grandfather needs a walking cane after his hip surgery. What height should it be?",
            "With his arm hanging naturally, the top of the cane should reach the crease of "
            "his wrist. An adjustable aluminium one is easiest to get right.",
        ],
    ),
    (
        "Hatching food for the aquarium",
        [
            "I want to hatch brine shrimp to feed my aquarium fish. How warm should the water be?",
            "Keep the hatchery around 26 to 28°C with strong aeration and a light on; the "
            "eggs hatch in about a day. Feed them to the fish soon after, while they are most "
            "nutritious.",
        ],
    ),
    (
        "Nursery on a budget",
        [
            "We're decorating a nursery on a tight budget. Any ideas that won't need redoing "
            "when the baby is older?",
            "Paint the walls a calm neutral and add colour through washable fabrics and "
            "prints you can swap later. A cot that converts to a toddler bed stretches the "
            "money furthest.",
        ],
    ),
    (
        "Storm damage to the fence",
        [
            "A storm snapped a big branch off our oak and it landed on the neighbour's fence. "
            "Who pays for the repair?",
            "If the tree was healthy it's usually treated as an act of nature and each side "
            "claims on their own insurance. If it was visibly rotten, the owner may be "
            "liable.",
        ],
    ),
    (
        "Index fund or picking stocks",
        [
            "Is an index fund a better choice than picking individual stocks for someone who "
            "is just starting to invest?",
            "For most beginners, a low-cost broad index fund beats stock picking after fees "
            "and taxes. It also takes far less time and emotional energy.",
        ],
    ),
    (
        "Sweater after the dryer",
        [
            "My wool sweater shrank two sizes in the dryer. Can I stretch it back?",
            "Heat and tumbling make wool shrink. Soak it in lukewarm water with a spoonful "
            "of hair conditioner for half an hour, then gently stretch it and dry it flat, "
            "pinned to shape.",
        ],
    ),
    (
        "Duplicate contacts after switching phones",
        [
            "My phone has hundreds of duplicate contacts after switching accounts. Is there "
            "a way to consolidate them?",
            "Both major phone platforms have a merge option in the contacts app. Back up "
            "first, then merge and review the few that need manual fixes.",
        ],
    ),
    (
        "Apologising for a late project",
        [
            "I missed a project deadline at work by two days. How do I apologise to my "
            "manager without over-explaining?",
            "Own it briefly, give the new delivery date and say what you'll change so it "
            "doesn't repeat. A short, direct message lands better than a long justification.",
        ],
    ),
    (
        "Preparing a canvas",
        [
            "I'm stretching my own canvas for an oil painting. How tight should it be before "
            "I prime it?",
            "Pull it taut enough that it sounds like a drum when tapped, working from the "
            "centre of each side outward. Gesso will tighten it a little more as it dries.",
        ],
    ),
    (
        "Popping knuckles habit",
        [
            "I crack my knuckles constantly. Will it give me arthritis?",
            "Studies haven't found a link between knuckle cracking and arthritis. The pop is "
            "a gas bubble collapsing in the joint fluid.",
        ],
    ),
    (
        "Fingerpicking technique",
        [
            "In classical guitar, should I be plucking the strings with my nails or the "
            "flesh of my fingertips?",
            "Most players use a blend: the fingertip touches first and the nail releases the "
            "string, which gives a clearer tone. Keep the nails short and smoothly filed.",
        ],
    ),
    (
        "Large arrays in NumPy",
        [
            "What's the fastest way to transpose a large matrix in NumPy without copying it?",
            "Use arr.T or arr.transpose(): both return a view, so no data is copied. Call "
            "np.ascontiguousarray on the result only if later code needs a contiguous layout.",
        ],
    ),
    (
        "Nervous about my sister's big day",
        [
            "I'm giving a toast at my sister's wedding and I'm terrified. How long should it be?",
            "Aim for three to five minutes: one funny story, one sincere moment about the "
            "couple, and a clear toast at the end. Practise it out loud several times.",
        ],
    ),
    (
        "Laptop loud while browsing",
        [
            "My laptop fan runs loudly even when I'm only browsing, and the bottom gets hot. "
            "Is it overheating?",
            "Dust in the vents is the usual culprit; blow it out with compressed air while "
            "holding the fan still. Also check for a background process using the CPU.",
        ],
    ),
    (
        "Mortgage application turned down",
        [
            "Our mortgage application was refused because of a missed phone bill payment two "
            "years ago. What can we do?",
            "Ask the lender which credit agency they used and get the report; a single old "
            "late payment can often be explained with a note of correction. A broker can "
            "also point you to lenders with more flexible criteria.",
        ],
    ),
    (
        "Spark from the hallway light",
        [
            "When I flip the hallway light switch there's a small spark and a crackle. Is "
            "that dangerous?",
            "A tiny spark can be normal, but crackling suggests a loose connection. Turn off "
            "the circuit at the breaker and have an electrician replace the switch.",
        ],
    ),
    (
        "Shell config not picked up",
        [
            "I set environment variables in .bashrc but my script doesn't see them. What am "
            "I missing?",
            "Use export so child processes inherit them, and open a new shell or run source "
            "~/.bashrc. Scripts started from cron don't read .bashrc at all.",
        ],
    ),
    (
        "First podcast guest",
        [
            "I'm interviewing a guest on my podcast for the first time. How do I prepare "
            "good questions?",
            "Research their recent work, write a handful of open questions, and listen for "
            "follow-ups instead of sticking to the list. Send the topics in advance so they "
            "feel at ease.",
        ],
    ),
    (
        "Honey went solid in the jar",
        [
            "The honey in my cupboard has crystallized and gone solid. Is it still safe to eat?",
            "Crystallized honey is perfectly safe; it's natural for honey high in glucose. "
            "Stand the jar in warm water and stir until it turns runny again.",
        ],
    ),
    (
        "Teaching a puppy to sit",
        [
            "We're training our new puppy to sit and stay. How long should each session be?",
            "Keep sessions to about five minutes, a few times a day, and stop while she's "
            "still keen. Reward instantly with tiny treats.",
        ],
    ),
    # ------------------------------------------------------------ against the paraphrase targets
    (
        "Dead battery after a frost",
        [
            "My car battery was completely dead after a frosty night, even though it's only "
            "two years old. Is the cold to blame?",
            "Cold cuts a battery's available power sharply, so a weak one often fails on the "
            "first frost. Have it load-tested; short trips that never recharge it fully are "
            "a common cause.",
        ],
    ),
    (
        "Paint colour for a north-facing kitchen",
        [
            "Our kitchen faces north and feels gloomy. Would a pale yellow paint brighten it?",
            "Warm yellows can lift a north-facing room, but pick one with a little grey in "
            "it or it may look greenish. Test large swatches on two walls and look at them "
            "at different times of day.",
        ],
    ),
    (
        "Bunk beds for two kids",
        [
            "Is a bunk bed safe for a five-year-old on the top? We're short on space.",
            "Most safety guidance says under-sixes should sleep on the bottom bunk. Put the "
            "younger one below and add a guard rail on both sides of the top.",
        ],
    ),
    (
        "Payment sent to the wrong account",
        [
            "I sent a bank transfer to the wrong account number an hour ago. Can I undo it?",
            "Call your bank immediately and ask them to start a recall; the bank can contact "
            "the receiving bank even when a payment can't be cancelled. The sooner you call, "
            "the better the odds.",
        ],
    ),
    (
        "Wine with grilled salmon",
        [
            "What red wine goes with grilled salmon? My partner doesn't like white.",
            "A light, low-tannin red like Pinot Noir or Gamay works well with salmon. Serve "
            "it slightly chilled.",
        ],
    ),
    (
        "Long labels spilling over",
        [
            "How do I change the text alignment in a spreadsheet cell so long labels wrap "
            "instead of spilling over?",
            "Select the cells, open Format Cells, and on the Alignment tab tick Wrap text. "
            "You can also set the vertical alignment to centre.",
        ],
    ),
    (
        "Bank statement dates mangled",
        [
            "My bank only lets me export statements as CSV. How do I open the file in a "
            "spreadsheet without the dates getting mangled?",
            "Import it through the data import wizard rather than double-clicking, and set "
            "the date column's type to text. That stops the spreadsheet guessing.",
        ],
    ),
    (
        "Landlord keeping half the deposit",
        [
            "Our landlord is keeping half of the deposit for carpet cleaning. Is that allowed?",
            "Landlords can only deduct for damage beyond normal wear and tear, and must show "
            "evidence. Ask for receipts and raise a dispute with the deposit protection "
            "scheme if needed.",
        ],
    ),
    (
        "Phone clock wrong after a trip",
        [
            "After flying back from Tokyo my phone still shows the wrong time zone. "
            "Automatic time is on.",
            "Toggle automatic date and time off and on again, and make sure location "
            "services are allowed for the system. A restart usually forces it to pick up the "
            "local network time.",
        ],
    ),
    (
        "Musty smell from the cooker",
        [
            "Our rice cooker has started to smell musty even after washing the bowl. How do "
            "I clean it properly?",
            "Check the steam vent and the rubber gasket under the lid, where starch builds "
            "up. Steam a cup of water with a splash of vinegar, then dry everything with the "
            "lid open.",
        ],
    ),
    (
        "Head shaking and scratching",
        [
            "My dog keeps shaking his head and scratching one ear. Is it an infection?",
            "Head shaking and scratching are classic signs of an ear infection or mites. A "
            "vet can swab the ear to check; don't put anything into it before then.",
        ],
    ),
    (
        "Sheet pan dinner idea",
        [
            "Can you suggest a sheet pan dinner that's ready in 30 minutes?",
            "Toss chicken thighs, chickpeas, red onion and peppers in oil and smoked "
            "paprika, then roast at 220°C for 25 minutes. Finish with yoghurt and lemon.",
        ],
    ),
    (
        "Streaks on the windows",
        [
            "How do I clean windows without leaving streaks? I use newspaper and vinegar.",
            "Use a squeegee with a drop of dish soap in warm water and wipe the blade after "
            "each pass. Avoid cleaning in direct sun, which dries the glass too fast.",
        ],
    ),
    (
        "Cracked phone screen",
        [
            "I dropped my phone and the screen cracked in one corner. Is it worth repairing?",
            "If the touch still works, a screen protector stops it spreading for a while. A "
            "proper screen replacement costs less than a new phone for most recent models.",
        ],
    ),
    (
        "Eyes tired at the computer",
        [
            "My vision goes blurry after long days at the computer. Do I need glasses?",
            "Eye strain from screens often causes temporary blurring; try the 20-20-20 rule. "
            "If it persists, book an eye test since you may need glasses for close work.",
        ],
    ),
    (
        "Salary sacrifice pension",
        [
            "My employer offers salary sacrifice into the pension. Is it worth it?",
            "Usually yes: you save income tax and national insurance on the amount "
            "sacrificed. It lowers your official salary, though, which can affect mortgage "
            "applications.",
        ],
    ),
    (
        "Extra page from the printer",
        [
            "My printer prints a blank page after every document. How do I stop it?",
            "That's usually a separator page setting in the printer preferences, or an extra "
            "page break at the end of the document. Turn off the separator and check for a "
            "trailing break.",
        ],
    ),
    (
        "Foam dice for game night",
        [
            "Where can I buy large foam dice for a family board game night?",
            "Party and toy shops usually stock them, or you can make your own by covering "
            "foam cubes with felt and gluing on dots.",
        ],
    ),
    (
        "Backing up phone photos",
        [
            "What's the best way to back up my phone photos before switching to a new phone?",
            "Turn on cloud photo backup and let it finish on wifi, then also copy the "
            "originals to a computer. Check a few files open before wiping the old phone.",
        ],
    ),
    (
        "Reboots after an update",
        [
            "Since the last update my laptop keeps restarting on its own every few minutes. "
            "How do I find out why?",
            "Check the system event log for the error logged just before each reboot, and "
            "try booting into safe mode. Rolling back the update is the quickest test.",
        ],
    ),
]

# Ordinary distractors: other topics, no target in mind.
OTHERS: list[tuple[str, list[str]]] = [
    (
        "Banana bread came out dense",
        [
            "My banana bread came out dense and gummy in the middle. What went wrong?",
            "Overmixing after adding the flour is the usual cause, or the oven ran cool. Fold "
            "the flour in until just combined and check it with a skewer before taking it out.",
        ],
    ),
    (
        "Composting in a small apartment",
        [
            "Can I compost food scraps in a small apartment without it smelling?",
            "A bokashi bin works well indoors: it ferments scraps in a sealed bucket. Bury "
            "the result in a planter or hand it to a community garden.",
        ],
    ),
    (
        "venv or conda",
        [
            "Should I use venv or conda for a new data analysis project?",
            "If all your packages are on PyPI, venv with pip is simpler. Conda helps when you "
            "need compiled scientific libraries or several Python versions side by side.",
        ],
    ),
    (
        "Conflict in the lock file",
        [
            "I keep getting merge conflicts in package-lock.json. What's the cleanest way to "
            "resolve them?",
            "Take either side, then run npm install to regenerate the lock file from "
            "package.json, and commit the result. Don't hand-edit it.",
        ],
    ),
    (
        "Cumulative sum per month",
        [
            "How do I compute a running total of sales per month in PostgreSQL?",
            "Use a window function: SUM(amount) OVER (ORDER BY month). Add PARTITION BY "
            "region if each region needs its own running total.",
        ],
    ),
    (
        "Permission denied on a mounted volume",
        [
            "My container can't write to a mounted volume; it says permission denied.",
            "The process inside runs as a user whose UID doesn't own the host folder. Run "
            "the container with --user matching your host UID, or chown the folder.",
        ],
    ),
    (
        "How big a rainy-day fund",
        [
            "How much should I keep in an emergency fund?",
            "Three to six months of essential expenses is the common guideline. Keep it in "
            "an easy-access savings account, separate from everyday spending.",
        ],
    ),
    (
        "Packing for Iceland in March",
        [
            "What should I pack for a week in Iceland in March?",
            "Layers: thermal base layers, a fleece, a waterproof shell and insulated boots. "
            "Add a swimsuit for the hot springs and microspikes for icy paths.",
        ],
    ),
    (
        "Protein for lifting",
        [
            "How much protein do I need per day if I'm lifting weights to build muscle?",
            "Around 1.6 grams per kilogram of body weight per day covers most people. Spread "
            "it over three or four meals.",
        ],
    ),
    (
        "Bathroom sink drains slowly",
        [
            "The bathroom sink drains really slowly. I'd rather not use harsh chemicals.",
            "Pull out the pop-up stopper and clear the hair wrapped around it; that fixes it "
            "most of the time. A cheap plastic drain snake reaches further down.",
        ],
    ),
    (
        "Squeaky hamster wheel",
        [
            "My hamster's wheel squeaks all night. Is there a safe lubricant?",
            "A drop of plain vegetable oil on the axle is safe, or swap to a silent "
            "ball-bearing wheel. Avoid WD-40, which is toxic to small animals.",
        ],
    ),
    (
        "Flat tyre on the roadside",
        [
            "I've never changed a flat tyre. What are the steps?",
            "Park on firm flat ground, loosen the wheel nuts slightly, jack the car up, then "
            "remove the nuts and swap the wheel. Tighten the nuts in a star pattern once it's "
            "back down.",
        ],
    ),
    (
        "Potty training a three-year-old",
        [
            "When should we start potty training our son? He's almost three.",
            "Look for readiness signs: staying dry for two hours, noticing when he goes, and "
            "interest in the toilet. A relaxed long weekend at home is a good time to start.",
        ],
    ),
    (
        "Product rule question",
        [
            "How do I differentiate x squared times sine x?",
            "Use the product rule: the derivative of x²·sin x is 2x·sin x + x²·cos x.",
        ],
    ),
    (
        "LinkedIn headline",
        [
            "What should I put in my LinkedIn headline if I'm between jobs?",
            "Lead with the role you want and one strength, for example 'Data analyst | "
            "SQL and dashboards'. Leave out 'unemployed'.",
        ],
    ),
    (
        "Fresh pasta by hand",
        [
            "What's the ratio for fresh egg pasta?",
            "About 100 grams of 00 flour per egg. Knead for ten minutes and rest it wrapped "
            "for half an hour before rolling.",
        ],
    ),
    (
        "Basil on the windowsill",
        [
            "My basil on the windowsill keeps getting leggy. How do I keep it bushy?",
            "Pinch off the top pair of leaves above a node every week, and give it the "
            "sunniest window you have. Rotate the pot every few days.",
        ],
    ),
    (
        "Envelope budgeting",
        [
            "How does the envelope method of budgeting work with cards instead of cash?",
            "Set up virtual pots in your banking app for each category and move the monthly "
            "amount into them on payday. When a pot is empty, that category is done.",
        ],
    ),
    (
        "Cover for a ski trip",
        [
            "Does normal travel insurance cover a ski trip?",
            "Usually not: winter sports are an add-on. Check that it covers off-piste if you "
            "plan to go, and mountain rescue.",
        ],
    ),
    (
        "Painting a ceiling without streaks",
        [
            "How do I paint a ceiling without roller marks?",
            "Use a flat ceiling paint, load the roller well and keep a wet edge, working in "
            "sections parallel to the main window.",
        ],
    ),
    (
        "Cloudy tank after a water change",
        [
            "My aquarium went cloudy two days after a big water change. Are the fish in danger?",
            "It's probably a bacterial bloom and usually clears within a week. Don't overfeed, "
            "and test ammonia to be safe.",
        ],
    ),
    (
        "Winter or all-season tyres",
        [
            "Do I need winter tyres if it only snows a few days a year?",
            "All-season tyres with the snowflake symbol are a good compromise for mild "
            "winters. Real winter tyres matter where it stays below 7°C for months.",
        ],
    ),
    (
        "Gap on my CV",
        [
            "How do I explain a two-year gap on my CV from caring for a parent?",
            "Name it plainly in one line, such as 'Career break: full-time carer', and "
            "mention any skills or courses from that time.",
        ],
    ),
    (
        "Pizza dough overnight",
        [
            "Can I leave pizza dough in the fridge overnight?",
            "Yes, a cold rise of one to three days improves the flavour. Let it warm up for "
            "an hour before stretching.",
        ],
    ),
    (
        "Filling raised beds",
        [
            "What should I fill new raised beds with?",
            "A mix of about 60 percent topsoil and 40 percent compost works well. Cardboard "
            "at the bottom smothers grass without blocking drainage.",
        ],
    ),
    (
        "Errors in async functions",
        [
            "How do I catch errors from an await in JavaScript?",
            "Wrap the await in try/catch inside the async function, or attach .catch() to "
            "the promise where you call it.",
        ],
    ),
    (
        "Filenames with spaces in bash",
        [
            "My bash for-loop breaks on filenames with spaces.",
            'Quote the variable and glob directly: for f in *.txt; do echo "$f"; done. '
            "Don't loop over the output of ls.",
        ],
    ),
    (
        "Student loan or investing",
        [
            "Should I overpay my student loan or invest the extra money?",
            "Compare the loan's interest rate with what you'd reasonably expect from "
            "investing. With a low rate and written-off balances, investing often wins.",
        ],
    ),
    (
        "Road trip in the Highlands",
        [
            "Is a week enough for a road trip around the Scottish Highlands?",
            "A week covers the west coast and Skye comfortably. Book accommodation early in "
            "summer, since single-track roads are slow.",
        ],
    ),
    (
        "Toilet keeps running",
        [
            "Our toilet keeps running after every flush.",
            "Usually the flapper isn't sealing or the float is set too high. Lift the lid, "
            "check the flapper for warping and lower the float a little.",
        ],
    ),
    (
        "What rabbits should eat",
        [
            "What should an indoor rabbit eat every day?",
            "Unlimited hay is the core of the diet, plus a handful of leafy greens and a "
            "small amount of pellets. Carrots are treats, not a staple.",
        ],
    ),
    (
        "Violin won't stay in tune",
        [
            "My violin goes out of tune every day. Is something wrong?",
            "New strings stretch for a week or two. Use the fine tuners for small changes and "
            "check the pegs aren't slipping.",
        ],
    ),
    (
        "Insects up close",
        [
            "How do I photograph insects without scaring them away?",
            "Shoot early in the morning when they're cold and slow, approach slowly and use "
            "a macro lens with a longer working distance.",
        ],
    ),
    (
        "Charging an electric car at home",
        [
            "Is it worth installing a home charger for an electric car?",
            "If you drive daily, a 7 kW wallbox is far faster than a plug socket and can use "
            "cheap overnight tariffs.",
        ],
    ),
    (
        "Siblings fighting constantly",
        [
            "My two kids fight constantly over toys. Should I step in?",
            "Step in for safety, otherwise coach them to solve it: name the feelings, then "
            "ask each for one idea. Praise them when they play well together.",
        ],
    ),
    (
        "Submitting poems to magazines",
        [
            "How do I submit poems to literary magazines?",
            "Read recent issues, follow each magazine's guidelines exactly and track your "
            "submissions in a spreadsheet. Simultaneous submissions are usually fine if "
            "stated.",
        ],
    ),
    (
        "Triangle area from three sides",
        [
            "How do I find the area of a triangle when I only know the three sides?",
            "Use Heron's formula: with s the semi-perimeter, the area is the square root of "
            "s(s − a)(s − b)(s − c).",
        ],
    ),
    (
        "Asking a former boss for a reference",
        [
            "How do I ask a former boss for a reference?",
            "Send a short, friendly message, remind them what you worked on together and "
            "tell them what the role needs. Give them an easy way to say no.",
        ],
    ),
    (
        "Vegan lasagne",
        [
            "Can you suggest a vegan lasagne filling?",
            "Try lentils and mushrooms in tomato sauce, with a white sauce made from oat milk "
            "and nutritional yeast.",
        ],
    ),
    (
        "Moss taking over the lawn",
        [
            "Our lawn is full of moss. How do I get rid of it?",
            "Moss means shade, compaction or poor drainage. Rake it out in autumn, aerate "
            "the soil and overseed the bare patches.",
        ],
    ),
    (
        "Borrow checker complaint",
        [
            "Rust says I cannot borrow a value as mutable because it's also borrowed as immutable.",
            "End the immutable borrow before the mutable one, for example by cloning the "
            "value you need or splitting the work into two scopes.",
        ],
    ),
    (
        "Reverse proxy setup",
        [
            "How do I put nginx in front of an app running on port 8080?",
            "Add a server block with location / { proxy_pass http://127.0.0.1:8080; } and "
            "set the Host and X-Forwarded-For headers.",
        ],
    ),
    (
        "Checking my credit score",
        [
            "Does checking my own credit score lower it?",
            "No, checking your own file is a soft search and doesn't affect the score. Only "
            "hard searches from credit applications do.",
        ],
    ),
    (
        "Hanging a heavy mirror",
        [
            "How do I hang a heavy mirror on a plasterboard wall?",
            "Use heavy-duty cavity anchors rated for the weight, or screw into a stud. A "
            "French cleat spreads the load evenly.",
        ],
    ),
    (
        "Pond fish in winter",
        [
            "Do goldfish in an outdoor pond need anything in winter?",
            "Stop feeding when the water drops below about 10°C and keep a small area ice-"
            "free with a floating heater so gases can escape.",
        ],
    ),
    (
        "Photographing the moon",
        [
            "My photos of the moon are just a white blob.",
            "The moon is sunlit, so expose for daylight: roughly f/8, 1/250 second at ISO "
            "100, with a long lens.",
        ],
    ),
    (
        "Clutch slipping",
        [
            "Revs rise but the car doesn't speed up when I accelerate in fourth gear.",
            "That's a classic sign of a slipping clutch. Get it inspected soon; driving on a "
            "worn clutch can damage the flywheel.",
        ],
    ),
    (
        "Teaching a child to ride a bike",
        [
            "What's the easiest way to teach my six-year-old to ride a bike?",
            "Take the pedals off and let her scoot and glide until she balances, then put "
            "them back on. A gentle grassy slope helps.",
        ],
    ),
    (
        "Kimchi fermentation time",
        [
            "How long should kimchi ferment at room temperature?",
            "One to two days, tasting daily, then move it to the fridge where it keeps "
            "slowly souring for weeks.",
        ],
    ),
    (
        "Pothos cuttings",
        [
            "Can I grow new pothos plants from cuttings?",
            "Yes: cut just below a node, put the cutting in water and pot it once roots are a "
            "few centimetres long.",
        ],
    ),
    (
        "Sharing setup between tests",
        [
            "How do I share an expensive setup between several pytest tests?",
            "Make it a fixture with scope='module' or scope='session', and yield the object "
            "so cleanup runs after the last test.",
        ],
    ),
    (
        "VLOOKUP returns #N/A",
        [
            "My VLOOKUP returns #N/A although the value is clearly in the table.",
            "Often one side is text and the other a number, or there are trailing spaces. "
            "Try TRIM on both, and set the last argument to FALSE for an exact match.",
        ],
    ),
    (
        "Overpaying the mortgage",
        [
            "Is it better to overpay the mortgage or put money into a pension?",
            "Pension contributions get tax relief, which usually beats the mortgage rate. "
            "Overpaying makes more sense once the pension allowance is used.",
        ],
    ),
    (
        "Camping checklist",
        [
            "What should be on a first camping trip checklist?",
            "Tent, sleeping bag rated for the night temperature, a mat, headtorch, stove, "
            "water and a first aid kit. Pitch the tent at home once to practise.",
        ],
    ),
    (
        "Knee hurts on the bike",
        [
            "The front of my knee hurts after long bike rides.",
            "Pain at the front often means the saddle is too low. Raise it until your leg is "
            "almost straight at the bottom of the stroke.",
        ],
    ),
    (
        "Stripping old wallpaper",
        [
            "What's the easiest way to strip old wallpaper?",
            "Score it, then use a steamer or hot water with a little washing-up liquid and "
            "scrape gently to spare the plaster.",
        ],
    ),
    (
        "Foxes and the chicken coop",
        [
            "How do I keep foxes out of our chicken coop?",
            "Use welded mesh rather than chicken wire, bury it 30 centimetres deep and lock "
            "the hens in every evening.",
        ],
    ),
    (
        "Headphones for mixing",
        [
            "Which headphones are good for mixing music at home?",
            "Open-back studio headphones give a more natural stereo image. Check your mixes "
            "on speakers or earbuds as well.",
        ],
    ),
    (
        "Insurance renewal went up",
        [
            "My car insurance renewal went up by 30 percent. Is it worth switching?",
            "Almost always get comparison quotes; loyal customers often pay more. Call your "
            "insurer with a cheaper quote and ask them to match it.",
        ],
    ),
    (
        "After-school routine",
        [
            "How do I get my nine-year-old to do homework without a daily battle?",
            "Set a fixed time after a snack, a quiet spot and a short checklist. Let him "
            "choose the order of tasks.",
        ],
    ),
    # Near neighbours of the paraphrase targets: the same domain, another problem.
    (
        "Charging stops at 80 percent",
        [
            "My new laptop stops charging at 80 percent even when it's plugged in all day. "
            "Is the charger faulty?",
            "Many laptops cap charging at 80 percent to extend battery life. Look for a "
            "battery care or charge limit setting in the manufacturer's app.",
        ],
    ),
    (
        "Crispy tips on a spider plant",
        [
            "The leaf tips on my spider plant are going brown and crispy. Is the air too dry?",
            "Crispy brown tips usually come from dry air or fluoride in tap water. Try "
            "rainwater or filtered water and group plants together to raise humidity.",
        ],
    ),
    (
        "Drowsy every afternoon",
        [
            "I get really drowsy every afternoon around 3pm at work. Is that normal?",
            "A post-lunch dip is normal; a lighter lunch, a short walk and some daylight "
            "help. Persistent daytime sleepiness is worth raising with a doctor.",
        ],
    ),
    (
        "Typo in a commit message",
        [
            "I made a typo in my last commit message. Can I fix it before pushing?",
            "Run git commit --amend and edit the message; since it isn't pushed yet, nothing "
            "else is needed.",
        ],
    ),
    (
        "Coffee on a white shirt",
        [
            "I spilled coffee on a white cotton shirt this morning. How do I get it out?",
            "Rinse it from the back with cold water, then rub in a little liquid detergent "
            "and wash as usual. Avoid hot water until the stain is gone.",
        ],
    ),
    (
        "Vibration above 100 km/h",
        [
            "My steering wheel vibrates above 100 km/h but is smooth at lower speeds.",
            "Vibration that starts at a certain speed usually means a wheel needs balancing. "
            "A tyre shop can balance all four in half an hour.",
        ],
    ),
    (
        "Saving a dict as JSON",
        [
            "How do I save a Python dictionary to a JSON file with nice indentation?",
            "Use json.dump(data, f, indent=2) inside a with open('out.json', 'w') block.",
        ],
    ),
    (
        "Budgeting for the wedding",
        [
            "We're getting married in eighteen months. How much should we set aside each "
            "month for the wedding?",
            "Divide the total budget by the months left and automate that transfer; leave a "
            "10 percent buffer for surprises.",
        ],
    ),
    (
        "Altitude in Cusco",
        [
            "We're flying to Cusco next month. How do we avoid altitude sickness?",
            "Take the first two days easy, drink plenty of water, skip alcohol and consider "
            "staying in the lower Sacred Valley first. Ask a doctor about acetazolamide.",
        ],
    ),
    (
        "Quinoa tastes soapy",
        [
            "My quinoa always tastes bitter and soapy.",
            "Rinse it well in a fine sieve to wash off the saponins, then toast it in the pan "
            "for a minute before adding water.",
        ],
    ),
    (
        "Cat hides from guests",
        [
            "Our cat hides under the sofa whenever guests come over and won't come out for hours.",
            "Give her a quiet room with food and litter during visits and let guests ignore "
            "her; forcing contact makes it worse.",
        ],
    ),
    (
        "Rushing ahead of the click",
        [
            "How do I start practising piano with a metronome? I keep rushing.",
            "Set it slower than feels necessary, play only the tricky bars, and raise it by a "
            "few beats per minute once they're clean.",
        ],
    ),
    (
        "Bedroom windows dripping",
        [
            "Every morning the bedroom windows are dripping with condensation. How do we stop it?",
            "Condensation is warm moist air meeting cold glass: ventilate after showers, dry "
            "laundry outside and keep the room at a steady temperature. A dehumidifier helps "
            "in winter.",
        ],
    ),
    (
        "Meltdowns when the tablet goes off",
        [
            "My three-year-old screams every time we turn off the tablet. Should we ban it?",
            "Give a two-minute warning and a clear next activity; a timer she can see makes "
            "the ending feel less sudden.",
        ],
    ),
    (
        "Speckled indoor photos",
        [
            "My indoor photos at ISO 6400 look grainy and speckled.",
            "That's sensor noise: expose a bit brighter, shoot raw and apply noise reduction "
            "in editing, or use a faster lens so the ISO can stay lower.",
        ],
    ),
    (
        "Raise at the annual review",
        [
            "My annual review is next month. How do I ask for a raise after two years in the role?",
            "List concrete results with numbers, research the market rate and name a figure; "
            "ask what it would take if the answer is no.",
        ],
    ),
    (
        "Manuscript far too long",
        [
            "My first draft is 140,000 words and agents want under 100,000. Where do I start "
            "cutting?",
            "Cut whole scenes that don't change anything before trimming sentences; merge "
            "minor characters and shorten chapter openings.",
        ],
    ),
    (
        "Two aces in a row",
        [
            "What's the probability of drawing two aces in a row from a standard deck "
            "without replacement?",
            "4/52 for the first and 3/51 for the second, so 12/2652, which is 1/221.",
        ],
    ),
    (
        "Neck ache from scrolling",
        [
            "My neck aches after scrolling on my phone for a while.",
            "Hold the phone closer to eye level and take breaks; chin tucks a few times a day "
            "strengthen the deep neck muscles.",
        ],
    ),
    (
        "Overnight script dies silently",
        [
            "My Python script stops halfway with no error message when it runs overnight.",
            "Check whether the system killed it for using too much memory; dmesg shows "
            "out-of-memory kills. Logging each step to a file shows where it stopped.",
        ],
    ),
]

CONVERSATIONS: list[tuple[str, list[str]]] = TARGETS + HARD_NEGATIVES + OTHERS

# (query, title of the conversation it should find, kind)
QUERIES: list[tuple[str, str, str]] = [
    # keyword: words that occur verbatim in the target (the first, fifth, seventh and
    # seventeenth across two of its messages)
    ("sourdough starter acetone", "Levain rising slowly", "keyword"),
    ("list comprehension nested loop", "Flattening a matrix in one line", "keyword"),
    ("squash commits interactive rebase", "Tidying up a feature branch history", "keyword"),
    ("left join duplicate rows", "Order totals coming out doubled", "keyword"),
    ("docker port mapping localhost", "Flask app unreachable from the browser", "keyword"),
    ("roth ira contribution limit", "Self-employed retirement savings", "keyword"),
    ("tomatoes uneven watering", "Black patches on my tomatoes", "keyword"),
    ("puppy pulls leash harness", "Walks with the new dog are a struggle", "keyword"),
    ("barre chord buzzing", "F shape sounds muffled on acoustic", "keyword"),
    ("long exposure nd filter", "Silky water in daylight", "keyword"),
    ("brake pads squeal", "Noise when stopping at lights", "keyword"),
    ("sleep regression nap", "Toddler up at five", "keyword"),
    ("cover letter career change", "Moving from classroom to design", "keyword"),
    ("discriminant negative quadratic", "Homework: no real roots", "keyword"),
    ("japan rail pass shinkansen", "Getting around by bullet train", "keyword"),
    ("plantar fasciitis heel", "Stabbing pain on the first steps", "keyword"),
    ("faucet ceramic cartridge", "Single-lever mixer won't stop", "keyword"),
    ("novel middle pacing", "Second act dragging", "keyword"),
    ("cat peeing litter box", "Accidents on the bathroom mat", "keyword"),
    ("lightroom preset skin tones", "Portraits look orange after editing", "keyword"),
    # word_form: other inflections of the target's words, none of them verbatim
    ("pruning rose cane blackening", "Climbers cut back too late", "word_form"),
    ("brining turkeys saltiness", "Holiday bird came out too strong", "word_form"),
    ("decorators wrapping functions", "Timing helper reports the wrong name", "word_form"),
    ("deleting branches recovery", "Regretting a hasty git -D", "word_form"),
    ("indexes filtered queries", "Report takes eight seconds to load", "word_form"),
    ("shrinking images building stages", "Go service container is 1.2 GB", "word_form"),
    ("consolidation loans balances", "Three cards at 24 percent", "word_form"),
    ("missing connection flights compensated", "Stuck in Frankfurt", "word_form"),
    ("stretched hamstring tightness", "Still stiff after a month", "word_form"),
    ("cracked grouting tile", "Shower joints crumbling", "word_form"),
    ("parrots plucked feather", "African grey stressed", "word_form"),
    ("transposing songs lowering keys", "Too high for my voice", "word_form"),
    ("underexposure weddings photographed", "Church pictures too dark", "word_form"),
    ("overheating engines fans", "Temperature gauge climbing in traffic", "word_form"),
    ("refusing vegetable eating", "Four-year-old and dinner fights", "word_form"),
    ("switched tense stories", "Flash fiction timeline slips", "word_form"),
    ("simplifying fractions variable", "Algebra homework with letters", "word_form"),
    ("jobs rejection interviewing", "Turned down after the last round", "word_form"),
    ("caramels crystallizing graininess", "Sugar syrup went wrong", "word_form"),
    ("marathons trained weekly mileage", "First long race in April", "word_form"),
    # paraphrase: the meaning in other words, no word (nor its first five letters) shared
    ("notebook computer loses charge while unused", "Power draining overnight", "paraphrase"),
    ("houseplant foliage fading from excess moisture", "Potted fig looking sickly", "paraphrase"),
    ("trouble dozing off at night", "Awake until 3am", "paraphrase"),
    (
        "revert the most recent check-in but keep my edits",
        "Backing out my last change",
        "paraphrase",
    ),
    ("removing merlot from a rug", "Spill at the dinner party", "paraphrase"),
    ("vehicle veers sideways on motorway", "Steering wheel off-centre", "paraphrase"),
    (
        "parse comma separated values into mapping objects",
        "Header row as dictionary keys",
        "paraphrase",
    ),
    ("putting money aside to buy a home", "Saving for our first flat", "paraphrase"),
    ("tiredness from crossing time zones", "Wrecked after flying east", "paraphrase"),
    ("grains end up gluey and soggy", "Basmati comes out wrong", "paraphrase"),
    (
        "pup panics at loud explosions during celebrations",
        "Hiding under the bed at New Year",
        "paraphrase",
    ),
    ("decipher written notation as a beginner", "Sight-reading from scratch", "paraphrase"),
    ("chilly breeze sneaking past glass panes", "Winter heating bills up", "paraphrase"),
    ("adolescent glued to screens at bedtime", "Limits for our fifteen-year-old", "paraphrase"),
    ("fuzzy pictures after dark", "City shots come out soft", "paraphrase"),
    ("ask for bigger pay before signing on", "Counter-offer email", "paraphrase"),
    ("stuck, unable to produce any prose lately", "Staring at an empty document", "paraphrase"),
    ("chance a pair of cubes totals 7", "Dice question from class", "paraphrase"),
    ("sore lumbar region from long office workdays", "Ache after desk days", "paraphrase"),
    ("program crashes then relaunches endlessly", "Compose stack stuck restarting", "paraphrase"),
]

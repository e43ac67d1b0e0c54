-- Characters of a game (pgwarden's own evaluation schema): plural/singular
-- names, bridge tables two links away, lookup tables named by their values.
CREATE TABLE faction (id integer PRIMARY KEY, faction_name text);
CREATE TABLE sex (id integer PRIMARY KEY, sex text);
CREATE TABLE eye_colour (id integer PRIMARY KEY, colour text);
CREATE TABLE champion (id integer PRIMARY KEY, champion_name text, full_name text, sex_id integer REFERENCES sex(id), eye_colour_id integer REFERENCES eye_colour(id), faction_id integer REFERENCES faction(id), height_cm integer);
CREATE TABLE talent (id integer PRIMARY KEY, talent_name text);
CREATE TABLE champion_talent (champion_id integer REFERENCES champion(id), talent_id integer REFERENCES talent(id));
CREATE TABLE realm (id integer PRIMARY KEY, realm_name text);
CREATE TABLE quest (id integer PRIMARY KEY, title text, realm_id integer REFERENCES realm(id), reward_gold integer);
CREATE TABLE quest_party (quest_id integer REFERENCES quest(id), champion_id integer REFERENCES champion(id), completed boolean);
INSERT INTO faction VALUES (1, 'Silver Vanguard'), (2, 'Ember Syndicate'), (3, 'Tidewardens');
INSERT INTO sex VALUES (1, 'Male'), (2, 'Female'), (3, 'Unknown');
INSERT INTO eye_colour VALUES (1, 'Amber'), (2, 'Grey'), (3, 'Violet');
INSERT INTO champion VALUES (1, 'Kestrel', 'Ysolde Marrow', 2, 1, 1, 171), (2, 'Brack', 'Odo Brackwater', 1, 2, 2, 190), (3, 'Wisp', NULL, 3, 3, 3, 120);
INSERT INTO talent VALUES (1, 'Shadowstep'), (2, 'Frost Ward'), (3, 'Beast Speech');
INSERT INTO champion_talent VALUES (1, 1), (1, 3), (2, 2), (3, 3);
INSERT INTO realm VALUES (1, 'Ashen Steppe'), (2, 'Glimmerdeep');
INSERT INTO quest VALUES (1, 'The Drowned Bell', 2, 400), (2, 'Cinders of Aul', 1, 250);
INSERT INTO quest_party VALUES (1, 1, true), (1, 3, false), (2, 2, true);

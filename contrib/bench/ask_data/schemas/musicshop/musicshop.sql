-- A music download shop (pgwarden's own evaluation schema): camelCase
-- names, no declared keys at all (joins only by column names).
CREATE TABLE "Artist" ("ArtistId" integer, "Name" text, "Country" text);
CREATE TABLE "Album" ("AlbumId" integer, "Title" text, "ArtistId" integer, "ReleaseYear" integer);
CREATE TABLE "Track" ("TrackId" integer, "AlbumId" integer, "TrackName" text, "GenreId" integer, "Milliseconds" integer, "UnitPrice" numeric(6,2));
CREATE TABLE "Genre" ("GenreId" integer, "GenreName" text);
CREATE TABLE "Customer" ("CustomerId" integer, "FirstName" text, "LastName" text, "Country" text, "SupportRepId" integer);
CREATE TABLE "Employee" ("EmployeeId" integer, "FirstName" text, "LastName" text, "JobTitle" text);
CREATE TABLE "Invoice" ("InvoiceId" integer, "CustomerId" integer, "InvoiceDate" date, "BillingCountry" text, "Total" numeric(8,2));
CREATE TABLE "InvoiceLine" ("InvoiceLineId" integer, "InvoiceId" integer, "TrackId" integer, "Quantity" integer, "UnitPrice" numeric(6,2));
CREATE TABLE "Playlist" ("PlaylistId" integer, "PlaylistName" text);
CREATE TABLE "PlaylistTrack" ("PlaylistId" integer, "TrackId" integer);
INSERT INTO "Artist" VALUES (1, 'Nightjar Collective', 'Ireland'), (2, 'Lumen Drift', 'Norway'), (3, 'Brass Orchard', 'Brazil');
INSERT INTO "Album" VALUES (1, 'Lantern Season', 1, 2019), (2, 'Polar Static', 2, 2021), (3, 'Carnival of Pipes', 3, 2017);
INSERT INTO "Track" VALUES (1, 1, 'Moth Song', 1, 215000, 0.99), (2, 2, 'Aurora Loop', 2, 301000, 1.29), (3, 3, 'Samba Valve', 3, 188000, 0.99);
INSERT INTO "Genre" VALUES (1, 'Folk'), (2, 'Ambient'), (3, 'Jazz'), (4, 'Bossa Nova');
INSERT INTO "Customer" VALUES (1, 'Ines', 'Carvalho', 'Portugal', 1), (2, 'Mats', 'Lindqvist', 'Sweden', 2);
INSERT INTO "Employee" VALUES (1, 'Dara', 'Quinn', 'Support Agent'), (2, 'Olu', 'Bankole', 'Sales Manager');
INSERT INTO "Invoice" VALUES (1, 1, '2024-03-02', 'Portugal', 2.28), (2, 2, '2024-03-09', 'Sweden', 0.99);
INSERT INTO "InvoiceLine" VALUES (1, 1, 1, 1, 0.99), (2, 1, 2, 1, 1.29), (3, 2, 3, 1, 0.99);
INSERT INTO "Playlist" VALUES (1, 'Rainy Sunday'), (2, 'Workout Mix');
INSERT INTO "PlaylistTrack" VALUES (1, 1), (1, 2), (2, 3);

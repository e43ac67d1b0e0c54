-- A lending library (pgwarden's own evaluation schema): declared keys, a
-- many-to-many bridge between books and authors, values that name things.
CREATE TABLE branch (branch_id integer PRIMARY KEY, branch_name text, city text, opened date);
CREATE TABLE member (member_id integer PRIMARY KEY, full_name text, home_branch integer REFERENCES branch(branch_id), membership_level text, joined_on date);
CREATE TABLE genre (genre_id integer PRIMARY KEY, label text);
CREATE TABLE book (book_id integer PRIMARY KEY, title text, genre_id integer REFERENCES genre(genre_id), published_year integer, isbn text);
CREATE TABLE writer (writer_id integer PRIMARY KEY, writer_name text, nationality text);
CREATE TABLE book_writer (book_id integer REFERENCES book(book_id), writer_id integer REFERENCES writer(writer_id));
CREATE TABLE copy (copy_id integer PRIMARY KEY, book_id integer REFERENCES book(book_id), branch_id integer REFERENCES branch(branch_id), condition text);
CREATE TABLE loan (loan_id integer PRIMARY KEY, copy_id integer REFERENCES copy(copy_id), member_id integer REFERENCES member(member_id), borrowed_on date, returned_on date);
CREATE TABLE fine (fine_id integer PRIMARY KEY, loan_id integer REFERENCES loan(loan_id), amount numeric(8,2), paid boolean);
CREATE TABLE event (event_id integer PRIMARY KEY, branch_id integer REFERENCES branch(branch_id), topic text, held_on date);
INSERT INTO branch VALUES (1, 'Riverside', 'Leeds', '1998-05-01'), (2, 'Old Market', 'York', '2004-09-12'), (3, 'Harbour View', 'Hull', '2011-02-20');
INSERT INTO member VALUES (1, 'Priya Natarajan', 1, 'gold', '2020-01-04'), (2, 'Tomasz Wójcik', 2, 'basic', '2021-07-19'), (3, 'Ama Owusu', 3, 'student', '2022-10-02');
INSERT INTO genre VALUES (1, 'Science Fiction'), (2, 'Crime'), (3, 'Poetry'), (4, 'Cookery');
INSERT INTO book VALUES (1, 'The Glass Orbit', 1, 2015, '978-0-00-000001-1'), (2, 'Cold Harbour', 2, 2019, '978-0-00-000002-8'), (3, 'Salt and Smoke', 4, 2021, '978-0-00-000003-5');
INSERT INTO writer VALUES (1, 'Helena Marsh', 'British'), (2, 'Kenji Arakawa', 'Japanese'), (3, 'Lucía Ferrer', 'Spanish');
INSERT INTO book_writer VALUES (1, 1), (2, 2), (3, 3), (3, 1);
INSERT INTO copy VALUES (1, 1, 1, 'good'), (2, 1, 2, 'worn'), (3, 2, 3, 'new'), (4, 3, 1, 'damaged');
INSERT INTO loan VALUES (1, 1, 1, '2024-01-10', '2024-01-24'), (2, 3, 2, '2024-02-01', NULL), (3, 4, 3, '2024-03-05', '2024-04-30');
INSERT INTO fine VALUES (1, 3, 4.50, false);
INSERT INTO event VALUES (1, 1, 'Poetry night', '2024-05-02'), (2, 3, 'Coding club', '2024-06-11');

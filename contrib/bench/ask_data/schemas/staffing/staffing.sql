-- An HR schema (pgwarden's own evaluation schema): abbreviated lower-case
-- compound names, comments only in the catalog, no declared keys.
CREATE TABLE dept (deptno integer, dname text, loc_id integer);
CREATE TABLE loc (loc_id integer, city text, country_code text);
CREATE TABLE emp (empno integer, ename text, job text, mgr integer, hiredate date, sal numeric(10,2), deptno integer);
CREATE TABLE salgrade (grade integer, losal numeric(10,2), hisal numeric(10,2));
CREATE TABLE empproj (empno integer, projno integer, hours integer);
CREATE TABLE proj (projno integer, pname text, budget numeric(12,2), deptno integer);
CREATE TABLE leave_req (reqno integer, empno integer, leave_type text, startdate date, days integer);
CREATE TABLE currency (code text, currency_name text);
CREATE TABLE payslip (slipno integer, empno integer, paid_on date, gross numeric(10,2), currency_code text);
INSERT INTO dept VALUES (10, 'Accounting', 1), (20, 'Research', 2), (30, 'Logistics', 3);
INSERT INTO loc VALUES (1, 'Brno', 'CZ'), (2, 'Utrecht', 'NL'), (3, 'Porto', 'PT');
INSERT INTO emp VALUES (1, 'Marek Dvorak', 'analyst', NULL, '2019-04-01', 4200, 10), (2, 'Femke de Vries', 'engineer', 1, '2021-09-15', 5100, 20), (3, 'Rui Sousa', 'driver', 1, '2022-01-10', 2900, 30);
INSERT INTO salgrade VALUES (1, 0, 3000), (2, 3000.01, 5000), (3, 5000.01, 99999);
INSERT INTO empproj VALUES (1, 100, 120), (2, 101, 300);
INSERT INTO proj VALUES (100, 'Ledger migration', 50000, 10), (101, 'Sensor fusion', 250000, 20);
INSERT INTO leave_req VALUES (1, 2, 'parental', '2024-02-01', 30), (2, 3, 'sick', '2024-03-11', 2);
INSERT INTO currency VALUES ('CZK', 'Czech koruna'), ('EUR', 'Euro');
INSERT INTO payslip VALUES (1, 1, '2024-01-31', 98000, 'CZK'), (2, 2, '2024-01-31', 5100, 'EUR');

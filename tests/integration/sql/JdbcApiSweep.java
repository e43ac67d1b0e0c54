/*
 * JdbcApiSweep: every pgjdbc DatabaseMetaData method that reads the server's
 * catalogs, called the way a BI tool's schema browser calls it (DBeaver,
 * DataGrip, Metabase, Tableau-JDBC), plus the Connection calls those tools
 * make on connect and ResultSetMetaData on a query (getTableName, isNullable,
 * isAutoIncrement and getColumnTypeName fire pgjdbc's own catalog queries).
 * Run by tests/integration/test_tools_api.py against pgwarden and against
 * the single-tenant reference; the test compares the two outputs call by
 * call. The SQL is whatever pgjdbc builds (PgDatabaseMetaData.java), not a
 * transcription of it.
 *
 * Usage: java -cp postgresql.jar JdbcApiSweep.java HOST PORT DATABASE USER PASSWORD
 *            [prepareThreshold] [passes] [options]
 * Output, per call: "CALL name", "COLS label:type,...", one "ROW a|b|..." per
 * row, then "END name N" -- or "ERROR name SQLSTATE message" when the call
 * throws (the sweep goes on: the connection must stay usable). The last
 * line is "DONE".
 */
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcApiSweep {
    interface Call {
        ResultSet run() throws Exception;
    }

    interface Action {
        String run() throws Exception;
    }

    static String clean(String s) {
        return s == null ? "<null>" : s.replace('\n', ' ').replace('|', '/');
    }

    static void dump(String name, Call call) {
        System.out.println("CALL " + name);
        try (ResultSet rs = call.run()) {
            ResultSetMetaData m = rs.getMetaData();
            StringBuilder cols = new StringBuilder("COLS ");
            for (int i = 1; i <= m.getColumnCount(); i++)
                cols.append(i > 1 ? "," : "").append(m.getColumnLabel(i)).append(':')
                    .append(m.getColumnType(i));
            System.out.println(cols);
            int n = 0;
            while (rs.next()) {
                StringBuilder row = new StringBuilder("ROW ");
                for (int i = 1; i <= m.getColumnCount(); i++)
                    row.append(i > 1 ? "|" : "").append(clean(rs.getString(i)));
                System.out.println(row);
                n++;
            }
            System.out.println("END " + name + " " + n);
        } catch (Exception e) {
            error(name, e);
        }
    }

    static void value(String name, Action action) {
        System.out.println("CALL " + name);
        try {
            System.out.println("VALUE " + clean(action.run()));
            System.out.println("END " + name + " 1");
        } catch (Exception e) {
            error(name, e);
        }
    }

    static void error(String name, Exception e) {
        String state = e instanceof SQLException ? ((SQLException) e).getSQLState() : "java";
        System.out.println("ERROR " + name + " " + state + " " + clean(e.getMessage()));
    }

    static void sweep(Connection conn) throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        value("productVersion", () -> md.getDatabaseProductName() + " "
            + md.getDatabaseMajorVersion() + "." + md.getDatabaseMinorVersion());
        value("getUserName", md::getUserName);
        value("getSQLKeywords", md::getSQLKeywords);
        value("getNumericFunctions", md::getNumericFunctions);
        value("getStringFunctions", md::getStringFunctions);
        value("getSystemFunctions", md::getSystemFunctions);
        value("getTimeDateFunctions", md::getTimeDateFunctions);
        value("getMaxNameLengths", () -> md.getMaxColumnNameLength() + " "
            + md.getMaxTableNameLength() + " " + md.getMaxSchemaNameLength() + " "
            + md.getMaxCatalogNameLength() + " " + md.getMaxProcedureNameLength() + " "
            + md.getMaxCursorNameLength() + " " + md.getMaxUserNameLength());
        value("getMaxIndexKeys", () -> md.getMaxColumnsInIndex() + "");
        value("isReadOnly", () -> md.isReadOnly() + "");
        value("getCatalog", conn::getCatalog);
        value("getSchema", conn::getSchema);
        value("getTransactionIsolation", () -> conn.getTransactionIsolation() + "");
        value("isValid", () -> conn.isValid(10) + "");
        dump("getCatalogs", md::getCatalogs);
        dump("getSchemas", md::getSchemas);
        dump("getSchemas(pattern)", () -> md.getSchemas(null, "%"));
        dump("getSchemas(vault)", () -> md.getSchemas(null, "vault"));
        dump("getTableTypes", md::getTableTypes);
        dump("getTables(all)", () -> md.getTables(null, null, "%", null));
        dump("getTables(public,types)", () -> md.getTables(null, "public", "%", new String[] {
            "TABLE", "VIEW", "SEQUENCE", "INDEX", "TYPE", "MATERIALIZED VIEW", "FOREIGN TABLE",
            "PARTITIONED TABLE", "PARTITIONED INDEX"}));
        dump("getTables(system)", () -> md.getTables(null, "pg_catalog", "pg_c%", new String[] {
            "SYSTEM TABLE", "SYSTEM VIEW", "SYSTEM INDEX"}));
        dump("getTables(hidden)", () -> md.getTables(null, null, "internal_notes", null));
        dump("getTables(vault)", () -> md.getTables(null, "vault", "%", null));
        dump("getColumns(public)", () -> md.getColumns(null, "public", "%", "%"));
        dump("getColumns(customers)", () -> md.getColumns(null, "public", "customers", null));
        dump("getColumns(view)", () -> md.getColumns(null, null, "customer_regions", "%"));
        dump("getColumns(hidden)", () -> md.getColumns(null, null, "internal_notes", "%"));
        dump("getColumns(vault)", () -> md.getColumns(null, "vault", "%", "%"));
        for (String t : new String[] {"customers", "orders", "products", "big_facts"}) {
            dump("getPrimaryKeys(" + t + ")", () -> md.getPrimaryKeys(null, "public", t));
            dump("getImportedKeys(" + t + ")", () -> md.getImportedKeys(null, "public", t));
            dump("getExportedKeys(" + t + ")", () -> md.getExportedKeys(null, "public", t));
            dump("getIndexInfo(" + t + ")", () -> md.getIndexInfo(null, "public", t, false,
                false));
            dump("getIndexInfo(" + t + ",unique)", () -> md.getIndexInfo(null, "public", t,
                true, true));
            dump("getBestRowIdentifier(" + t + ")", () -> md.getBestRowIdentifier(null,
                "public", t, DatabaseMetaData.bestRowSession, true));
            dump("getVersionColumns(" + t + ")", () -> md.getVersionColumns(null, "public", t));
            dump("getTablePrivileges(" + t + ")", () -> md.getTablePrivileges(null, "public",
                t));
            dump("getColumnPrivileges(" + t + ")", () -> md.getColumnPrivileges(null, "public",
                t, "%"));
            dump("getPseudoColumns(" + t + ")", () -> md.getPseudoColumns(null, "public", t,
                "%"));
        }
        dump("getPrimaryKeys(all)", () -> md.getPrimaryKeys(null, null, null));
        dump("getPrimaryKeys(hidden)", () -> md.getPrimaryKeys(null, null, "internal_notes"));
        dump("getImportedKeys(hidden)", () -> md.getImportedKeys(null, null, "internal_notes"));
        dump("getExportedKeys(hidden)", () -> md.getExportedKeys(null, null, "internal_notes"));
        dump("getCrossReference", () -> md.getCrossReference(null, "public", "customers", null,
            "public", "orders"));
        dump("getCrossReference(all)", () -> md.getCrossReference(null, null, null, null, null,
            null));
        dump("getIndexInfo(hidden)", () -> md.getIndexInfo(null, null, "internal_notes", false,
            true));
        dump("getBestRowIdentifier(transaction)", () -> md.getBestRowIdentifier(null, "public",
            "orders", DatabaseMetaData.bestRowTransaction, false));
        dump("getBestRowIdentifier(hidden)", () -> md.getBestRowIdentifier(null, null,
            "internal_notes", DatabaseMetaData.bestRowSession, true));
        dump("getTablePrivileges(all)", () -> md.getTablePrivileges(null, null, "%"));
        dump("getTablePrivileges(hidden)", () -> md.getTablePrivileges(null, null,
            "internal_notes"));
        dump("getColumnPrivileges(hidden)", () -> md.getColumnPrivileges(null, "public",
            "internal_notes", "%"));
        dump("getProcedures(public)", () -> md.getProcedures(null, "public", "%"));
        dump("getProcedures(lower)", () -> md.getProcedures(null, "pg_catalog", "lower"));
        dump("getProcedures(hidden)", () -> md.getProcedures(null, null, "note_checker"));
        dump("getProcedureColumns(public)", () -> md.getProcedureColumns(null, "public", "%",
            "%"));
        dump("getProcedureColumns(lower)", () -> md.getProcedureColumns(null, "pg_catalog",
            "lower", "%"));
        dump("getProcedureColumns(setof)", () -> md.getProcedureColumns(null, "pg_catalog",
            "pg_get_keywords", null));
        dump("getFunctions(public)", () -> md.getFunctions(null, "public", "%"));
        dump("getFunctions(upper)", () -> md.getFunctions(null, "pg_catalog", "upper"));
        dump("getFunctions(hidden)", () -> md.getFunctions(null, null, "note_checker"));
        dump("getFunctionColumns(public)", () -> md.getFunctionColumns(null, "public", "%",
            "%"));
        dump("getFunctionColumns(upper)", () -> md.getFunctionColumns(null, "pg_catalog",
            "upper", "%"));
        dump("getFunctionColumns(table)", () -> md.getFunctionColumns(null, "pg_catalog",
            "pg_get_keywords", "%"));
        dump("getTypeInfo", md::getTypeInfo);
        dump("getUDTs(all)", () -> md.getUDTs(null, null, "%", null));
        dump("getUDTs(public)", () -> md.getUDTs(null, "public", "%", new int[] {
            java.sql.Types.STRUCT, java.sql.Types.DISTINCT, java.sql.Types.JAVA_OBJECT}));
        dump("getUDTs(hidden)", () -> md.getUDTs(null, null, "internal_notes", null));
        dump("getSuperTypes", () -> md.getSuperTypes(null, "public", "%"));
        dump("getSuperTables", () -> md.getSuperTables(null, "public", "%"));
        dump("getAttributes", () -> md.getAttributes(null, "public", "%", "%"));
        dump("getClientInfoProperties", md::getClientInfoProperties);

        // The query a SQL editor runs, then what it asks of its result.
        String sql = "SELECT c.id, c.name, c.ssn, c.created_at, o.id AS order_id, o.mood, "
            + "o.total, count(*) OVER () AS n, ARRAY[o.status] AS statuses "
            + "FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id < ? "
            + "ORDER BY o.id LIMIT 3";
        for (int pass = 0; pass < 2; pass++) {
            String name = "resultSetMetaData#" + pass;
            System.out.println("CALL " + name);
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                ps.setInt(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData rm = rs.getMetaData();
                    for (int i = 1; i <= rm.getColumnCount(); i++)
                        System.out.println("ROW " + rm.getColumnLabel(i) + "|"
                            + rm.getColumnName(i) + "|" + rm.getTableName(i) + "|"
                            + rm.getSchemaName(i) + "|" + rm.getColumnTypeName(i) + "|"
                            + rm.getColumnType(i) + "|" + rm.isNullable(i) + "|"
                            + rm.isAutoIncrement(i) + "|" + rm.getPrecision(i) + "|"
                            + rm.getScale(i) + "|" + rm.getColumnDisplaySize(i) + "|"
                            + rm.isCaseSensitive(i) + "|" + rm.isSigned(i) + "|"
                            + rm.getColumnClassName(i) + "|"
                            + ((org.postgresql.PGResultSetMetaData) rm).getBaseColumnName(i)
                            + "|" + ((org.postgresql.PGResultSetMetaData) rm).getBaseTableName(i));
                    while (rs.next()) {
                        Object mood = rs.getObject("mood");
                        java.sql.Array arr = rs.getArray("statuses");
                        System.out.println("ROW " + rs.getInt(1) + "|" + rs.getString(2) + "|"
                            + rs.getString(3) + "|" + mood + "|"
                            + java.util.Arrays.toString((Object[]) arr.getArray()) + "|"
                            + arr.getBaseTypeName());
                    }
                }
                System.out.println("END " + name + " 1");
            } catch (Exception e) {
                error(name, e);
            }
        }
        // A hidden table read as a missing one, and the session still usable.
        dump("selectHidden", () -> conn.createStatement().executeQuery(
            "SELECT * FROM internal_notes"));
        dump("afterError", () -> conn.createStatement().executeQuery("SELECT 1 AS one"));
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        if (args.length > 5)
            props.setProperty("prepareThreshold", args[5]);
        int passes = args.length > 6 ? Integer.parseInt(args[6]) : 1;
        if (args.length > 7)
            props.setProperty("options", args[7]);
        try (Connection conn = DriverManager.getConnection(url, props)) {
            for (int pass = 0; pass < passes; pass++) {
                System.out.println("PASS " + pass);
                sweep(conn);
            }
        }
        System.out.println("DONE");
    }
}

/*
 * JdbcMetaCheck: pgjdbc's DatabaseMetaData as BI tools (DBeaver, DataGrip,
 * Metabase, Tableau-JDBC) call it on connect and sync, through pgwarden.
 * Every call's rows are printed as "CALL col=value ..." lines, so the test
 * can check what shows and that nothing hidden does. The SQL is pgjdbc's
 * own (PgDatabaseMetaData.java).
 *
 * Usage: java -cp postgresql.jar JdbcMetaCheck.java HOST PORT DATABASE USER PASSWORD
 * Exits non-zero on any exception.
 */
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.util.Properties;

public class JdbcMetaCheck {
    static void dump(String call, ResultSet rs, String... cols) throws Exception {
        int n = 0;
        while (rs.next()) {
            StringBuilder b = new StringBuilder(call);
            for (String c : cols)
                b.append(' ').append(c).append('=').append(rs.getString(c));
            System.out.println(b);
            n++;
        }
        System.out.println("COUNT " + call + " " + n);
        rs.close();
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = conn.getMetaData();
            System.out.println("PRODUCT " + md.getDatabaseProductName() + " "
                + md.getDatabaseMajorVersion());
            System.out.println("USER " + md.getUserName());
            System.out.println("CATALOG " + conn.getCatalog());
            dump("CATALOGS", md.getCatalogs(), "TABLE_CAT");
            dump("SCHEMAS", md.getSchemas(), "TABLE_SCHEM");
            dump("TABLETYPES", md.getTableTypes(), "TABLE_TYPE");
            dump("TABLES", md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"}),
                 "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS");
            dump("ALLTABLES", md.getTables(null, null, "%", null), "TABLE_SCHEM", "TABLE_NAME");
            dump("COLUMNS", md.getColumns(null, "public", "customers", "%"), "COLUMN_NAME",
                 "TYPE_NAME", "IS_NULLABLE", "IS_AUTOINCREMENT", "REMARKS");
            dump("ALLCOLUMNS", md.getColumns(null, "public", "%", "%"), "TABLE_NAME",
                 "COLUMN_NAME");
            dump("PK", md.getPrimaryKeys(null, "public", "customers"), "COLUMN_NAME", "PK_NAME");
            dump("IMPORTED", md.getImportedKeys(null, "public", "orders"), "PKTABLE_NAME",
                 "FKCOLUMN_NAME", "FK_NAME");
            dump("EXPORTED", md.getExportedKeys(null, "public", "customers"), "FKTABLE_NAME",
                 "FKCOLUMN_NAME");
            dump("CROSS", md.getCrossReference(null, "public", "customers", null, "public",
                 "orders"), "FK_NAME");
            dump("INDEXES", md.getIndexInfo(null, "public", "orders", false, true), "INDEX_NAME",
                 "COLUMN_NAME");
            dump("TYPES", md.getTypeInfo(), "TYPE_NAME");
            dump("UDTS", md.getUDTs(null, "public", "%", null), "TYPE_NAME");
            dump("FUNCTIONS", md.getFunctions(null, "public", "%"), "FUNCTION_NAME");
            dump("PROCEDURES", md.getProcedures(null, "public", "%"), "PROCEDURE_NAME");
            dump("TABLEPRIVS", md.getTablePrivileges(null, "public", "customers"), "GRANTEE",
                 "PRIVILEGE");
            dump("COLPRIVS", md.getColumnPrivileges(null, "public", "customers", "%"),
                 "COLUMN_NAME", "PRIVILEGE");
            dump("BESTROW", md.getBestRowIdentifier(null, "public", "customers",
                 DatabaseMetaData.bestRowSession, true), "COLUMN_NAME");
            dump("VERSIONCOLS", md.getVersionColumns(null, "public", "customers"), "COLUMN_NAME");
            dump("HIDDEN", md.getTables(null, null, "internal_notes", null), "TABLE_NAME");
            dump("HIDDENCOLS", md.getColumns(null, null, "internal_notes", "%"), "COLUMN_NAME");
            try (PreparedStatement ps =
                     conn.prepareStatement("SELECT id, name, ssn FROM customers WHERE id < ?")) {
                ps.setInt(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData rm = rs.getMetaData();
                    for (int i = 1; i <= rm.getColumnCount(); i++)
                        System.out.println("RSMD " + rm.getColumnName(i) + " table="
                            + rm.getTableName(i) + " nullable=" + rm.isNullable(i)
                            + " auto=" + rm.isAutoIncrement(i));
                    while (rs.next())
                        System.out.println("ROW " + rs.getInt(1) + " " + rs.getString(2));
                }
            }
        }
        System.out.println("DONE");
    }
}

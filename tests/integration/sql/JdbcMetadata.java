/*
 * JdbcMetadata: the catalog sync a BI tool does through pgjdbc's
 * DatabaseMetaData, run by tests/integration/test_catalog.py against pgwarden
 * (java's single-file source launcher, no javac step).
 *
 * Usage: java -cp postgresql.jar JdbcMetadata.java HOST PORT DATABASE USER PASSWORD [keys]
 * (with "keys": only primary keys and indexes)
 * Prints "TABLE schema.name type", "COLUMN schema.table.column type",
 * "PK table.column", "INDEX table.name", "SCHEMA name"; exits non-zero on
 * any exception.
 */
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Properties;

public class JdbcMetadata {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = conn.getMetaData();
            boolean keys = args.length > 5 && args[5].equals("keys");
            for (String table : keys ? new String[] {"customers", "orders"} : new String[0]) {
                try (ResultSet rs = md.getPrimaryKeys(null, "public", table)) {
                    while (rs.next())
                        System.out.println("PK " + table + "." + rs.getString("COLUMN_NAME"));
                }
                try (ResultSet rs = md.getIndexInfo(null, "public", table, false, true)) {
                    while (rs.next())
                        System.out.println("INDEX " + table + "." + rs.getString("INDEX_NAME"));
                }
            }
            if (keys)
                return;
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next())
                    System.out.println("SCHEMA " + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getTables(null, null, "%", null)) {
                while (rs.next())
                    System.out.println("TABLE " + rs.getString("TABLE_SCHEM") + "."
                        + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
            }
            try (ResultSet rs = md.getColumns(null, "public", "%", "%")) {
                while (rs.next())
                    System.out.println("COLUMN " + rs.getString("TABLE_SCHEM") + "."
                        + rs.getString("TABLE_NAME") + "." + rs.getString("COLUMN_NAME") + " "
                        + rs.getString("TYPE_NAME"));
            }
        }
    }
}

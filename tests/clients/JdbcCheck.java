/*
 * JdbcCheck: a pgjdbc client run by tests/integration/test_clients.py against
 * a running pgwarden. pgjdbc is what BI tools use, and it exercises what psql
 * does not: server-side prepared statements after prepareThreshold uses,
 * binary transfer, and DatabaseMetaData's catalog queries.
 *
 * Usage: java JdbcCheck HOST PORT DATABASE USER PASSWORD
 * Prints one line per fact; the Python test compares them. Exits non-zero on
 * any exception.
 */
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("prepareThreshold", "1"); /* named statements from the first use */
        props.setProperty("binaryTransfer", "true");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");

        try (Connection conn = DriverManager.getConnection(url, props)) {
            /* The same statement with different parameters, enough times that
             * pgjdbc switches to a named server-side statement and binary. */
            String sql = "SELECT c.name, o.total, o.placed_at FROM customers c "
                + "JOIN orders o ON o.customer_id = c.id WHERE c.id = ? AND o.total > ?";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int round = 0; round < 3; round++) {
                    for (int id = 1; id <= 3; id++) {
                        ps.setInt(1, id);
                        ps.setBigDecimal(2, new java.math.BigDecimal("0.50"));
                        try (ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                System.out.println("ROW " + round + " " + rs.getString(1) + " "
                                    + rs.getBigDecimal(2) + " "
                                    + rs.getTimestamp(3).toInstant());
                            }
                        }
                    }
                }
            }

            try (PreparedStatement ps = conn.prepareStatement(
                     "SELECT ?::text || '!' AS shout, ?::bigint * 2 AS twice, ?::bytea AS raw")) {
                ps.setString(1, "héllo");
                ps.setLong(2, 4500000000L);
                ps.setBytes(3, new byte[] {0, (byte) 0xff, 16});
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    byte[] raw = rs.getBytes(3);
                    System.out.println("PARAMS " + rs.getString(1) + " " + rs.getLong(2) + " "
                        + raw.length + ":" + (raw[1] & 0xff));
                }
            }

            try (Statement st = conn.createStatement()) {
                try {
                    st.executeQuery("SELECT 1/0");
                    System.out.println("ERROR none");
                } catch (SQLException e) {
                    System.out.println("ERROR " + e.getSQLState());
                }
                try (ResultSet rs = st.executeQuery("SELECT name FROM tenant_marker")) {
                    rs.next();
                    System.out.println("TENANT " + rs.getString(1));
                }
            }

            DatabaseMetaData md = conn.getMetaData();
            System.out.println("PRODUCT " + md.getDatabaseProductName());
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next())
                    System.out.println("TABLE " + rs.getString("TABLE_NAME"));
            }
            try (ResultSet rs = md.getColumns(null, "public", "customers", "%")) {
                while (rs.next())
                    System.out.println("COLUMN " + rs.getString("COLUMN_NAME") + " "
                        + rs.getString("TYPE_NAME"));
            }
        }
        System.out.println("DONE");
    }
}

/*
 * JdbcTxn: many pgjdbc connections at once through a pgwarden in
 * transaction pooling mode (tests/integration/test_txn_clients.py). Each
 * connection uses named server-side statements from the first execution
 * (prepareThreshold=1) and binary transfer, in and out of transactions, so
 * its statements must follow it from session to session.
 *
 * Usage: java JdbcTxn HOST PORT DATABASE USER PASSWORD CLIENTS ROUNDS
 * Prints "OK n" when every answer was the client's own, else "BAD ..." lines;
 * exits non-zero on any exception.
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

public class JdbcTxn {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        int clients = Integer.parseInt(args[5]);
        int rounds = Integer.parseInt(args[6]);
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("prepareThreshold", "1");
        props.setProperty("binaryTransfer", "true");
        props.setProperty("connectTimeout", "30");
        props.setProperty("socketTimeout", "120");
        AtomicInteger good = new AtomicInteger();
        List<String> bad = java.util.Collections.synchronizedList(new ArrayList<>());
        CountDownLatch connected = new CountDownLatch(clients);
        List<Thread> threads = new ArrayList<>();
        for (int n = 0; n < clients; n++) {
            final int me = n;
            Thread t = new Thread(() -> {
                try (Connection conn = DriverManager.getConnection(url, props)) {
                    connected.countDown();
                    connected.await();
                    try (PreparedStatement a = conn.prepareStatement(
                             "SELECT ?::int * 2 AS twice, ?::text AS who");
                         PreparedStatement b = conn.prepareStatement(
                             "SELECT name FROM tenant_marker WHERE ?::int >= 0")) {
                        for (int r = 0; r < rounds; r++) {
                            boolean tx = r % 2 == 1;
                            conn.setAutoCommit(!tx);
                            a.setInt(1, me * 1000 + r);
                            a.setString(2, "client " + me);
                            try (ResultSet rs = a.executeQuery()) {
                                rs.next();
                                if (rs.getInt(1) != 2 * (me * 1000 + r)
                                    || !rs.getString(2).equals("client " + me))
                                    bad.add("BAD " + me + " " + r + " " + rs.getInt(1));
                            }
                            b.setInt(1, r);
                            try (ResultSet rs = b.executeQuery()) {
                                rs.next();
                                if (!rs.getString(1).equals(args[2]))
                                    bad.add("BAD tenant " + rs.getString(1));
                            }
                            if (tx)
                                conn.commit();
                        }
                    }
                    good.incrementAndGet();
                } catch (Exception e) {
                    bad.add("BAD exception " + me + " " + e);
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads)
            t.join();
        for (String s : bad)
            System.out.println(s);
        System.out.println("OK " + good.get());
    }
}

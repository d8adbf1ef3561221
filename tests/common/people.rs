//! The people every role-based test needs: two teams (A, B), three advisors
//! (Olga and Piotr in team A, Basia in team B without a login), and a user of
//! every role. Tests add their own leads on top.

pub const ADMIN: &str = "00000000-0000-4000-8000-00000000000a";
pub const MANAGER_A: &str = "00000000-0000-4000-8000-0000000000a1";
pub const MANAGER_B: &str = "00000000-0000-4000-8000-0000000000b1";
pub const OLGA: &str = "00000000-0000-4000-8000-00000000a001";
pub const PIOTR: &str = "00000000-0000-4000-8000-00000000a002";

/// Teams 1 and 2, advisors 1 (Olga), 2 (Piotr), 3 (Basia), and their users.
pub const TEAMS_AND_USERS: &str = r#"
    insert into callsync.team (name) values ('Team A'), ('Team B');
    insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, team_id, user_id) values
        ('Olga',  'SALES-07', '48', '600100200', '+48600100200', 1, '00000000-0000-4000-8000-00000000a001'),
        ('Piotr', 'SALES-08', '48', '600100201', '+48600100201', 1, '00000000-0000-4000-8000-00000000a002'),
        ('Basia', 'SALES-20', '48', '600100202', '+48600100202', 2, null);
    insert into callsync.app_user (user_id, role, team_id, advisor_id) values
        ('00000000-0000-4000-8000-00000000000a', 'admin',   null, null),
        ('00000000-0000-4000-8000-0000000000a1', 'manager', 1,    null),
        ('00000000-0000-4000-8000-0000000000b1', 'manager', 2,    null),
        ('00000000-0000-4000-8000-00000000a001', 'advisor', null, 1),
        ('00000000-0000-4000-8000-00000000a002', 'advisor', null, 2);
"#;

DATABASE_URL = "postgresql://intake_svc:Tq8vL2pZx9wQ@ehr-db-1.northside.internal:5432/intake"
STRIPE_KEY = "sk_live_51HxQ2bLkP8m3NzR7tY9wV4cQe"
LOG_LEVEL = "info"

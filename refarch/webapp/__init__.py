"""What the Streamlit app calls: its services, its URL state, and how it is launched."""

"""The API's routers (docs/design.md §4); create_app includes them."""
